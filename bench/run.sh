#!/usr/bin/env bash
# `make bench`: cod's benchmarks, each printed as a table row
#   what | cod | baseline (measured in this run) | ratio | target
# and written as JSON to bench/results/<UTC date>.json.
#
#   bench/run.sh                 everything that can run here
#   ONLY=latency bench/run.sh    one of: latency throughput scheduler memory api container locality slurm
#   RUNS=5 JOBS=10000 ...        sizes (defaults keep a run under ~10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
COD=${COD:-$PWD/build/cod}
CLIENT=$PWD/build/bench/bench_client
RUNS=${RUNS:-3}
LAT_N=${LAT_N:-200}
JOBS=${JOBS:-10000}
CLIENTS=${CLIENTS:-16}
SCHED_EXECS=${SCHED_EXECS:-100000}
SCHED_NODES=${SCHED_NODES:-10000}
MEM_JOBS=${MEM_JOBS:-100000}
ONLY=${ONLY:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/cod-bench.XXXXXX")
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out_json="bench/results/$stamp.json"
rows=()
json_rows=()
pids=()
cleanup() {
	# devstacks stop on SIGINT, registries on SIGTERM
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
minmax() { sort -g | awk 'NR==1{mn=$1} {mx=$1} END {printf "%s-%s", mn, mx}'; }
row() { # what cod baseline ratio target
	rows+=("$(printf '| %s | %s | %s | %s | %s |' "$1" "$2" "$3" "$4" "$5")")
	json_rows+=("$(jq -cn --arg w "$1" --arg c "$2" --arg b "$3" --arg r "$4" --arg t "$5" \
		'{what: $w, cod: $c, baseline: $b, ratio: $r, target: $t}')")
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

start_devstack() { # dir
	"$COD" devstack --computes 2 --random-ports --stack-dir "$1" >"$1.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 600); do grep -q COD_NATS_URL "$1/cod.run" 2>/dev/null && break; sleep 0.05; done
	API="http://127.0.0.1:$(sed -n 's/^COD_API_PORT=//p' "$1/cod.run")"
	for _ in $(seq 1 600); do
		n=$(curl -s "$API/api/v1/orchestrator/nodes" | jq '[.Nodes[] | select(.Info.NodeType == "Compute" and .Connection == "CONNECTED")] | length')
		[ "$n" -ge 2 ] && break
		sleep 0.05
	done
}
stop_devstack() {
	local p=${pids[-1]}
	kill -INT "$p"; wait "$p" || true
	unset 'pids[-1]'
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# slurm_throughput N: N x `sbatch --wrap=true` through a tuned single-node
# Slurm (the peer set-up next to this project, oversubscribed to 32 CPUs as
# its README describes), first submit -> all done, in jobs/s; nothing when
# Slurm cannot run here. Installs slurm-wlm and munge when root.
slurm_throughput() {
	local peer=../shared/peers/slurm n=$1
	[ -f "$peer/setup.sh" ] || return 0
	if ! command -v sbatch >/dev/null && [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge bc >/dev/null 2>&1 || return 0
	fi
	command -v sbatch >/dev/null || return 0
	SLURM_CPUS=32 bash "$peer/setup.sh" "$work/slurm" >/dev/null 2>&1 || return 0
	local t0 t1
	t0=$(date +%s%N)
	for _ in $(seq 1 "$n"); do SLURM_CONF=$work/slurm/slurm.conf sbatch -Q --parsable --output=/dev/null --wrap=true >/dev/null; done
	while [ "$(SLURM_CONF=$work/slurm/slurm.conf squeue -h | wc -l)" -ne 0 ]; do sleep 0.05; done
	t1=$(date +%s%N)
	bash "$peer/teardown.sh" "$work/slurm" >/dev/null 2>&1 || true
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", n / ((b - a) / 1e9)}'
}

echo "cod benchmarks on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo
echo "| what | cod | baseline (same run) | ratio | target |"
echo "|---|---|---|---|---|"

if want latency || want throughput; then
	start_devstack "$work/stack"
	if want latency; then
		p50s=() p99s=() floors=()
		for _ in $(seq 1 "$RUNS"); do
			r=$("$CLIENT" latency "$API" "$LAT_N")
			p50s+=("$(jq -r .p50_ms <<<"$r")")
			p99s+=("$(jq -r .p99_ms <<<"$r")")
			f=$("$CLIENT" alive "$API" 1000)
			floors+=("$(jq -r .p50_ms <<<"$f")")
		done
		p50=$(printf '%s\n' "${p50s[@]}" | median)
		p99=$(printf '%s\n' "${p99s[@]}" | median)
		floor=$(printf '%s\n' "${floors[@]}" | median)
		row "noop job latency p50, submit -> Completed (ms, ${RUNS}x$LAT_N, min-max $(printf '%s\n' "${p50s[@]}" | minmax))" \
			"$p50" "REST round trip $floor; Bacalhau published 630" "$(ratio 630 "$p50") faster than Bacalhau" "< 5"
		row "noop job latency p99 (ms)" "$p99" "Bacalhau published 630 (average)" "$(ratio 630 "$p99")" "< 20"
	fi
	if want throughput; then
		tps=()
		fails=0
		for _ in $(seq 1 "$RUNS"); do
			r=$("$CLIENT" throughput "$API" "$JOBS" "$CLIENTS")
			tps+=("$(jq -r .jobs_per_s <<<"$r")")
			fails=$((fails + $(jq -r .failures <<<"$r")))
		done
		tp=$(printf '%s\n' "${tps[@]}" | median)
		row "noop throughput, $JOBS jobs / $CLIENTS clients (jobs/s, min-max $(printf '%s\n' "${tps[@]}" | minmax), failures $fails)" \
			"$tp" "Slurm tuned 24.9 (peers/slurm README; ONLY=slurm measures it)" "$(ratio "$tp" 24.9)" ">= 1000"
	fi
	stop_devstack
fi

if want scheduler; then
	vals=()
	for _ in $(seq 1 "$RUNS"); do
		d=$(mktemp -d "$work/sched.XXXX")
		r=$(COD_STORE_SYNC=${SCHED_SYNC:-full} "$CLIENT" scheduler "$SCHED_EXECS" "$SCHED_NODES" "$d" 2>/dev/null)
		vals+=("$(jq -r .placements_per_s <<<"$r")")
		rm -rf "$d"
	done
	v=$(printf '%s\n' "${vals[@]}" | median)
	row "scheduler alone: $SCHED_EXECS placements over $SCHED_NODES nodes, store included (placements/s, min-max $(printf '%s\n' "${vals[@]}" | minmax))" \
		"$v" "Nomad C1M 3750 (published, 5 servers)" "$(ratio "$v" 3750)" ">= 20000"
fi

if want memory || want api; then
	start_devstack "$work/mem"
	orch=$(pgrep -f -- "--data-dir $work/mem/orchestrator" | head -1)
	comp=$(pgrep -f -- "--data-dir $work/mem/compute-1" | head -1)
	sleep 1
	nats=$(pgrep -f "nats-server.*$work/mem" | head -1 || true)
	if want memory; then
		o=$(rss_kb "$orch")
		c=$(rss_kb "$comp")
		n=${nats:+$(rss_kb "$nats")}
		row "RSS idle orchestrator (MB)" "$(awk -v k="$o" 'BEGIN{printf "%.1f", k/1024}')" "nats-server idle ${n:+$(awk -v k="$n" 'BEGIN{printf "%.1f", k/1024}')}" "$(ratio "$o" "${n:-0}")" "< 20"
		row "RSS idle compute node (MB)" "$(awk -v k="$c" 'BEGIN{printf "%.1f", k/1024}')" "nats-server idle ${n:+$(awk -v k="$n" 'BEGIN{printf "%.1f", k/1024}')}" "$(ratio "$c" "${n:-0}")" "< 10"
	fi
	stop_devstack
	# the orchestrator with MEM_JOBS completed jobs in its store
	d="$work/big"
	mkdir -p "$d"
	COD_STORE_SYNC=off "$CLIENT" populate "$d" "$MEM_JOBS" >/dev/null 2>&1
	COD_DIR=$d "$COD" serve --orchestrator --data-dir "$d" -c API.Port=0 -c API.Host=127.0.0.1 -c Orchestrator.Port=0 \
		>"$work/big.log" 2>&1 &
	pids+=("$!")
	bigpid=$!
	for _ in $(seq 1 600); do grep -q COD_API_PORT "$d/cod.run" 2>/dev/null && break; sleep 0.05; done
	API="http://127.0.0.1:$(sed -n 's/^COD_API_PORT=//p' "$d/cod.run")"
	if want api; then
		r=$("$CLIENT" api "$API" 200)
		lp=$(jq -rs '.[0].p50_ms' <<<"$r")
		dp=$(jq -rs '.[1].p50_ms' <<<"$r")
		f=$("$CLIENT" alive "$API" 1000)
		floor=$(jq -r .p50_ms <<<"$f")
		row "API: first page of $MEM_JOBS jobs, p50 (ms)" "$lp" "REST round trip $floor" "$(ratio "$lp" "$floor")" "-"
		row "API: job describe with history+executions, p50 (ms)" "$dp" "REST round trip $floor" "$(ratio "$dp" "$floor")" "-"
	fi
	if want memory; then
		"$CLIENT" api "$API" 20 >/dev/null
		b=$(rss_kb "$bigpid")
		row "RSS orchestrator with $MEM_JOBS completed jobs (MB)" "$(awk -v k="$b" 'BEGIN{printf "%.1f", k/1024}')" "store file $(du -m "$d/orchestrator/state.db" | cut -f1) MB" "-" "< 100"
	fi
	stop_devstack
fi

if want container; then
	if [ "$(id -u)" != 0 ] || ! command -v skopeo >/dev/null || ! command -v docker-registry >/dev/null; then
		echo "container: needs root, skopeo and docker-registry (scripts/install-deps.sh); skipped"
	else
		scripts/test-images.sh "$work/images" >/dev/null
		out=$(scripts/start-registry.sh "$work/registry")
		pids+=("${out#* }")
		img="127.0.0.1:${out% *}/bench/busybox:latest"
		skopeo copy -q --all --dest-tls-verify=false "oci:$work/images/layout:cod-test/busybox:latest" "docker://$img"
		# the same container run directly by the runtime (baselines of 3 and
		# 4): a bundle with the image's busybox, `true` as the process
		b="$work/bundle"
		mkdir -p "$b/rootfs/bin"
		cp /bin/busybox "$b/rootfs/bin/busybox"
		ln -sf busybox "$b/rootfs/bin/true"
		# the runtime cod itself picks (Engines.Types.Docker.Runtime=auto: crun first)
		rt=crun
		command -v crun >/dev/null || rt=runc
		(cd "$b" && "$rt" spec >/dev/null 2>&1 || true)
		jq '.process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = true' "$b/config.json" >"$b/c.json"
		mv "$b/c.json" "$b/config.json"
		start_devstack "$work/cstack"
		body=$(jq -nc --arg i "$img" '{Job: {Type: "batch", Tasks: [{Name: "main",
			Engine: {Type: "docker", Params: {Image: $i, Entrypoint: ["/bin/true"]}}}]}}')
		BENCH_JOB_BODY=$body "$CLIENT" latency "$API" 3 >/dev/null # pull the image once
		r=$(BENCH_JOB_BODY=$body "$CLIENT" latency "$API" "${CONTAINER_N:-30}")
		cod_ms=$(jq -r .p50_ms <<<"$r")
		# 4: container throughput, the same job CJOBS times from 16 clients,
		# RUNS times, each run followed by a Slurm run (both move with the
		# machine's speed; the devstack idles meanwhile): medians, and the
		# ratio of each pair. After each pair the runtime alone runs the same
		# process as often, from as many workers, started as a compute node
		# starts it: the most containers per second the runtime allows here.
		cod_tps=() slurm_tps=() pair_ratios=() cod_tp_fails=0 rt_tps=() rt_shares=()
		for _ in $(seq 1 "$RUNS"); do
			r=$(BENCH_JOB_BODY=$body "$CLIENT" throughput "$API" "${CJOBS:-200}" "$CLIENTS")
			cod_tps+=("$(jq -r .jobs_per_s <<<"$r")")
			cod_tp_fails=$((cod_tp_fails + $(jq -r .failures <<<"$r")))
			s=$(slurm_throughput "${CJOBS:-200}")
			if [ -n "$s" ]; then
				slurm_tps+=("$s")
				pair_ratios+=("$(ratio "${cod_tps[-1]}" "$s" | tr -d x)")
			fi
			rm -rf "$work/rt"
			mkdir -p "$work/rt"
			r=$("$CLIENT" runtime "$b" "${CJOBS:-200}" "$CLIENTS" "$work/rt") || r=
			if [ -n "$r" ]; then
				rt_tps+=("$(jq -r .runs_per_s <<<"$r")")
				rt_shares+=("$(awk -v a="${cod_tps[-1]}" -v b="${rt_tps[-1]}" 'BEGIN{printf "%.0f", 100 * a / b}')")
			fi
		done
		stop_devstack
		cod_tp=$(printf '%s\n' "${cod_tps[@]}" | median)
		what="container throughput, ${CJOBS:-200} busybox true jobs / $CLIENTS clients (jobs/s, ${RUNS} runs, min-max $(printf '%s\n' "${cod_tps[@]}" | minmax), failures $cod_tp_fails)"
		if [ "${#slurm_tps[@]}" -gt 0 ]; then
			slurm_tp=$(printf '%s\n' "${slurm_tps[@]}" | median)
			row "$what" "$cod_tp" \
				"Slurm tuned, ${CJOBS:-200} x sbatch --wrap=true after each: $slurm_tp (min-max $(printf '%s\n' "${slurm_tps[@]}" | minmax))" \
				"$(ratio "$cod_tp" "$slurm_tp") (pairs $(printf '%s\n' "${pair_ratios[@]}" | minmax)x)" ">= 5x Slurm"
		else
			row "$what" "$cod_tp" "Slurm not available here (slurm-wlm, munge); peers README figure 24.9" \
				"$(ratio "$cod_tp" 24.9)" ">= 5x Slurm"
		fi
		if [ "${#rt_tps[@]}" -gt 0 ]; then
			rt_tp=$(printf '%s\n' "${rt_tps[@]}" | median)
			need=
			[ -n "${slurm_tp:-}" ] && need=", 5x Slurm is $(awk -v s="$slurm_tp" -v r="$rt_tp" 'BEGIN{printf "%.1f jobs/s, %.0f%% of it", 5 * s, 500 * s / r}')"
			row "container throughput ceiling: $rt alone, ${CJOBS:-200} runs of the same process from $CLIENTS workers, started as a compute node starts it (runs/s, min-max $(printf '%s\n' "${rt_tps[@]}" | minmax))" \
				"cod $cod_tp" "$rt alone $rt_tp$need" "cod at $(printf '%s\n' "${rt_shares[@]}" | median)% of it (pairs $(printf '%s\n' "${rt_shares[@]}" | minmax)%)" "report"
		fi
		times=()
		for i in $(seq 1 "${CONTAINER_N:-30}"); do
			t0=$(date +%s%N)
			# as cod runs it on a hybrid-cgroup host: a private mount
			# namespace without the cgroup2 mount, which crun refuses
			unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
				"$rt" run --bundle "$b" "cod-bench-$i" >/dev/null 2>&1 || true
			t1=$(date +%s%N)
			"$rt" delete -f "cod-bench-$i" >/dev/null 2>&1 || true
			times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e6}')")
		done
		base_ms=$(printf '%s\n' "${times[@]}" | median)
		over=$(awk -v a="$cod_ms" -v b="$base_ms" 'BEGIN{printf "%.1f", a-b}')
		row "container job (busybox true) end to end, p50 (ms)" "$cod_ms" "$rt run of the same process: $base_ms" \
			"+$over ms ($(ratio "$cod_ms" "$base_ms"))" "overhead < 15 ms"
	fi
fi

if want locality; then
	# a LOC_BYTES input (default 1 GiB) served over HTTP; one node holds it
	# in its input cache. The same job is placed by cod (locality on), then
	# forced onto the other node: bytes fetched and wall time of each.
	size=${LOC_BYTES:-1073741824}
	mkdir -p "$work/www"
	head -c "$size" /dev/urandom >"$work/www/dataset.bin"
	python3 -m http.server 0 --bind 127.0.0.1 --directory "$work/www" >"$work/www.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 100); do grep -q "port" "$work/www.log" && break; sleep 0.05; done
	url="http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$work/www.log" | head -n 1)/dataset.bin"
	start_devstack "$work/lstack"
	mapfile -t names < <(curl -s "$API/api/v1/orchestrator/nodes" | jq -r '.Nodes[] | select(.Info.NodeType == "Compute") | .Info.NodeID' | sort)
	loc_job() { # NAME [NODE]: prints "seconds node fetched"
		local c='[]' id t0 t1 st e
		[ -n "${2:-}" ] && c=$(jq -nc --arg n "$2" '[{Key: "name", Operator: "=", Values: [$n]}]')
		id=$(jq -nc --arg u "$url" --argjson c "$c" --arg n "$1" '{Job: {Name: $n, Type: "batch", Constraints: $c,
			Tasks: [{Name: "main", Engine: {Type: "noop"}, Resources: {Disk: "4Gi"},
			InputSources: [{Source: {Type: "urlDownload", Params: {URL: $u}}, Target: "/inputs"}]}]}}' |
			curl -s -X PUT -H 'Content-Type: application/json' --data-binary @- "$API/api/v1/orchestrator/jobs" | jq -r .JobID)
		t0=$(date +%s%N)
		for _ in $(seq 1 6000); do
			st=$(curl -s "$API/api/v1/orchestrator/jobs/$id" | jq -r .Job.State.StateType)
			case $st in Completed | Failed | Stopped) break ;; esac
			sleep 0.02
		done
		t1=$(date +%s%N)
		e=$(curl -s "$API/api/v1/orchestrator/jobs/$id/executions" | jq -c '.Items[0]')
		echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1e9}') $(jq -r .NodeID <<<"$e") $(jq -r '.RunOutput.InputBytes.Fetched // 0' <<<"$e") $st"
	}
	read -r _ warm_node _ _ <<<"$(loc_job warm "${names[0]}")"
	other=${names[1]}
	[ "$warm_node" = "${names[1]}" ] && other=${names[0]}
	read -r t_loc n_loc f_loc s_loc <<<"$(loc_job placed)"
	read -r t_far n_far f_far s_far <<<"$(loc_job forced "$other")"
	stop_devstack
	mb=$(awk -v b="$size" 'BEGIN{printf "%.0f", b/1048576}')
	row "data locality: job over a $mb MiB input held by one of two nodes, placed by cod (s; node, bytes fetched)" \
		"$t_loc ($([ "$n_loc" = "$warm_node" ] && echo "on the holder" || echo "NOT on the holder"), fetched $f_loc, $s_loc)" \
		"forced onto the other node: $t_far s, fetched $f_far ($s_far)" "$(ratio "$t_far" "$t_loc") faster" "report"
fi

if [ "$ONLY" = slurm ]; then
	if ! command -v sbatch >/dev/null; then
		echo "slurm: not installed (apt-get install slurm-wlm munge bc); skipped"
	else
		SLURM_CPUS=32 bash ../shared/peers/slurm/setup.sh "$work/slurm" >/dev/null
		export SLURM_CONF=$work/slurm/slurm.conf
		out=$(bash ../shared/peers/slurm/bench.sh 200 | head -1)
		bash ../shared/peers/slurm/teardown.sh "$work/slurm" >/dev/null || true
		row "Slurm 200 x sbatch --wrap=true (tuned)" "-" "$out" "-" "-"
	fi
fi

mkdir -p bench/results
printf '%s\n' "${json_rows[@]}" | jq -s --arg when "$stamp" --arg cores "$(nproc)" \
	'{when: $when, cores: ($cores | tonumber), rows: .}' >"$out_json"
echo
echo "results: $out_json"
