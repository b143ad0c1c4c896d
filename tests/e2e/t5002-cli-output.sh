#!/usr/bin/env bash
# t5002-cli-output: drive a real orchestrator through the CLI and check
# what every command prints in table, csv, json and yaml: job run, list,
# describe, history, executions, versions, stop, rerun; node list and
# describe; agent; version. There are no compute nodes, so jobs stay
# Queued and waiting must time out cleanly.
. "$(dirname "$0")/lib.sh"

# No compute node runs here. A default QueueTimeout keeps jobs Queued instead
# of failing them at once for want of nodes, so their state is stable.
start_orchestrator -c JobDefaults.Batch.Task.Timeouts.QueueTimeout=3600 || { not_ok "orchestrator starts"; exit 1; }
queued() { [ "$(curl -s "$API/api/v1/orchestrator/jobs/$1" | jq -r .Job.State.StateType)" = Queued ]; }
ok "orchestrator starts"

ID_RE='^j-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# ---- submit a few jobs
run_cod job run --wait=false "$REF_JOBS/docker.yaml"
expect_eq "job run --wait=false exits 0" "$RC" 0
ID1=$OUT
check "job run --wait=false prints only the job ID" grep -Eq "$ID_RE" <<<"$ID1"
expect_eq "job run --wait=false prints one line" "$(printf '%s\n' "$OUT" | wc -l)" 1

run_cod job run --wait=false "$REF_JOBS/noop.yaml"
ID2=$OUT
check "second job ID" grep -Eq "$ID_RE" <<<"$ID2"

run_cod job run --id-only --wait=false "$REF_JOBS/nameless.yaml"
expect_eq "job run --id-only exits 0" "$RC" 0
ID3=$OUT
check "job run --id-only prints only the job ID" grep -Eq "$ID_RE" <<<"$ID3"
for id in "$ID1" "$ID2" "$ID3"; do wait_for "job $id is Queued" 20 queued "$id"; done

cat >"$TEST_TMP/labelled.yaml" <<'EOF'
Name: labelled
Type: batch
Labels:
  team: data
Tasks:
  - Name: main
    Engine:
      Type: noop
EOF
run_cod job run --wait=false "$TEST_TMP/labelled.yaml"
ID4=$OUT
check "labelled job submitted" grep -Eq "$ID_RE" <<<"$ID4"

cat >"$TEST_TMP/canary.yaml" <<'EOF'
Name: canary
Type: batch
Labels:
  bacalhau_canary: "true"
Tasks:
  - Name: main
    Engine:
      Type: noop
EOF
run_cod job run --wait=false "$TEST_TMP/canary.yaml"
ID5=$OUT
run_cod job run --wait=false --namespace team-b "$REF_JOBS/docker.yaml"
ID6=$OUT
check "job in another namespace submitted" grep -Eq "$ID_RE" <<<"$ID6"

VISIBLE=$(printf '%s\n' "$ID1" "$ID2" "$ID3" "$ID4" | sort)

# ---- job list: table
run_cod job list
expect_eq "job list exits 0" "$RC" 0
header=$(printf '%s\n' "$OUT" | head -n 1)
for col in CREATED ID NAME JOB TYPE STATE; do
	expect_contains "job list header has $col" "$header" "$col"
done
expect_eq "job list shows the 4 visible jobs" "$(printf '%s\n' "$OUT" | tail -n +2 | wc -l)" 4
expect_contains "job list shows the short ID" "$OUT" "${ID1:0:10}"
expect_not_contains "job list hides the full ID" "$OUT" "$ID1"
expect_contains "job list shows the name" "$OUT" "Docker Job"
expect_contains "job list shows the engine summary" "$OUT" "docker busybox:1.37.0"
expect_contains "job list shows the type" "$OUT" "batch"
expect_contains "job list shows the state" "$OUT" "Queued"
expect_not_contains "job list hides canaries by default" "$OUT" "canary"
expect_not_contains "job list hides other namespaces" "$OUT" "${ID6:0:10}"
expect_eq "job list prints no paging hint for one page" "$ERR" ""

run_cod job list --wide
expect_contains "job list --wide shows the full ID" "$OUT" "$ID1"
run_cod job list --hide-header
expect_eq "job list --hide-header has no header" "$(printf '%s\n' "$OUT" | grep -c CREATED)" 0
expect_eq "job list --hide-header still lists the jobs" "$(printf '%s\n' "$OUT" | wc -l)" 4

# ---- job list: csv
run_cod job list --output csv
expect_eq "job list csv exits 0" "$RC" 0
expect_eq "job list csv header" "$(printf '%s\n' "$OUT" | head -n 1)" "CREATED,ID,NAME,JOB,TYPE,STATE"
expect_eq "job list csv has a line per job" "$(printf '%s\n' "$OUT" | wc -l)" 5
expect_contains "job list csv row" "$OUT" ",${ID1:0:10},Docker Job,docker busybox:1.37.0,batch,Queued"

# ---- job list: json and yaml
run_cod job list --output json
expect_eq "job list json exits 0" "$RC" 0
check "job list json parses" jq -e 'type == "array"' <<<"$OUT"
expect_eq "job list json lists the visible jobs" "$(jq -r '.[].ID' <<<"$OUT" | sort)" "$VISIBLE"
expect_eq "job list json keeps Bacalhau's field names" \
	"$(jq -r --arg id "$ID1" '.[] | select(.ID == $id) | .State.StateType + " " + .Tasks[0].Engine.Type' <<<"$OUT")" \
	"Queued docker"
run_cod job list --output json --pretty
check "job list --pretty is indented json" grep -q '^  {' <<<"$OUT"
run_cod job list --output yaml
expect_eq "job list yaml exits 0" "$RC" 0
expect_contains "job list yaml shows IDs" "$OUT" "- ID: $ID1"
expect_contains "job list yaml shows states" "$OUT" "StateType: Queued"

# ---- job list: filters and paging
run_cod job list --labels 'team=data' --output json
expect_eq "job list --labels selects by label" "$(jq -r '.[].ID' <<<"$OUT")" "$ID4"
run_cod job list --labels '' --output json
expect_eq "job list --labels '' shows canaries too" "$(jq length <<<"$OUT")" 5
run_cod job list --namespace team-b --output json
expect_eq "job list --namespace selects the namespace" "$(jq -r '.[].ID' <<<"$OUT")" "$ID6"
run_cod job list --namespace '*' --output json
expect_eq "job list --namespace '*' lists every namespace" "$(jq length <<<"$OUT")" 5
run_cod job list --order-by id --output json
expect_eq "job list --order-by id sorts by ID" "$(jq -r '.[].ID' <<<"$OUT")" "$VISIBLE"
run_cod job list --order-by id --order-reversed --output json
expect_eq "job list --order-reversed reverses" "$(jq -r '.[].ID' <<<"$OUT")" "$(sort -r <<<"$VISIBLE")"
run_cod job list --limit 2 --order-by id --output json
expect_eq "job list --limit 2 returns 2 jobs" "$(jq length <<<"$OUT")" 2
page1=$(jq -r '.[].ID' <<<"$OUT")
expect_contains "job list tells how to get the next page" "$ERR" "To fetch more records use: cod job list --next-token "
token=$(sed -n 's/.*--next-token \([^ ]*\).*/\1/p' <<<"$ERR")
run_cod job list --next-token "$token" --output json
expect_eq "job list --next-token continues" "$(jq length <<<"$OUT")" 2
page2=$(jq -r '.[].ID' <<<"$OUT")
expect_eq "the two pages cover every job once" "$(printf '%s\n%s\n' "$page1" "$page2" | sort)" "$VISIBLE"
run_cod job list --limit 1 --all --output json
expect_eq "job list --all follows every page" "$(jq -r '.[].ID' <<<"$OUT" | sort)" "$VISIBLE"
expect_eq "job list --all prints no paging hint" "$ERR" ""

# ---- job describe
run_cod job describe "$ID1"
expect_eq "job describe by full ID exits 0" "$RC" 0
check "describe shows the ID line" grep -Eq "^ID += $ID1$" <<<"$OUT"
check "describe shows the name" grep -Eq '^Name += Docker Job$' <<<"$OUT"
check "describe shows the state" grep -Eq '^State += Queued$' <<<"$OUT"
check "describe shows the count" grep -Eq '^Count += 1$' <<<"$OUT"
check "describe shows the version" grep -Eq '^Version += 1$' <<<"$OUT"
for section in Summary "Job History" Executions; do
	expect_contains "describe has the $section section" "$OUT" "$section"
done
expect_contains "describe shows the submission event" "$OUT" "Job submitted"
expect_contains "describe says there are no executions yet" "$OUT" "none yet"
run_cod job describe "${ID1:0:10}"
expect_eq "job describe by short ID exits 0" "$RC" 0
expect_contains "job describe by short ID finds the job" "$OUT" "$ID1"
run_cod job describe "Docker Job"
expect_eq "job describe by name exits 0" "$RC" 0
expect_contains "job describe by name finds the job" "$OUT" "$ID1"
run_cod job describe labelled
expect_contains "describe shows labels" "$OUT" "team=data"
run_cod job describe "$ID1" --output json
expect_eq "job describe json exits 0" "$RC" 0
expect_eq "job describe json has the job" "$(jq -r .Job.ID <<<"$OUT")" "$ID1"
expect_eq "job describe json has the history" "$(jq -r '.History.Items[0].Event.Topic' <<<"$OUT")" "Submission"
expect_eq "job describe json has the executions" "$(jq -r '.Executions.Items | length' <<<"$OUT")" 0
run_cod job describe "${ID2:0:10}" --output yaml
expect_contains "job describe yaml" "$OUT" "ID: $ID2"
run_cod job describe j-00000000-0000-0000-0000-000000000000
expect_eq "job describe of an unknown job exits 1" "$RC" 1
expect_contains "unknown job: the server's message" "$ERR" "not found"
expect_contains "unknown job: the hint to list jobs" "$ERR" "cod job list"
run_cod job describe "Docker Job" --namespace team-b --output json
expect_eq "job describe --namespace picks that namespace's job" "$(jq -r .Job.ID <<<"$OUT")" "$ID6"

# ---- history, executions, versions
run_cod job history "$ID1"
expect_eq "job history exits 0" "$RC" 0
header=$(printf '%s\n' "$OUT" | head -n 1)
for col in TIME LEVEL "JOB VERSION" "EXEC. ID" TOPIC EVENT; do
	expect_contains "job history header has $col" "$header" "$col"
done
expect_contains "job history shows the submission" "$OUT" "Job submitted"
run_cod job history "$ID1" --output json
expect_eq "job history json" "$(jq -r '.[0].Type + " " + .[0].Event.Topic' <<<"$OUT")" "JobLevel Submission"
run_cod job history "$ID1" --event-type execution --output json
expect_eq "job history --event-type execution has none yet" "$(jq length <<<"$OUT")" 0
run_cod job history "$ID1" --output csv
expect_eq "job history csv header" "$(printf '%s\n' "$OUT" | head -n 1)" "TIME,LEVEL,JOB VERSION,EXEC. ID,TOPIC,EVENT"

run_cod job executions "$ID1"
expect_eq "job executions exits 0" "$RC" 0
expect_eq "job executions header" "$(printf '%s\n' "$OUT" | head -n 1 | tr -s ' ')" \
	"CREATED MODIFIED ID JOB VERSION NODE ID REV. STATE DESIRED COMMENT"
run_cod job executions "$ID1" --output json
expect_eq "job executions json is an empty array" "$(jq -c . <<<"$OUT")" "[]"

run_cod job versions "$ID1"
expect_eq "job versions exits 0" "$RC" 0
expect_eq "job versions header" "$(printf '%s\n' "$OUT" | head -n 1 | tr -s ' ')" "CREATED AT JOB VERSION"
check "job versions lists version 1" grep -Eq ' 1$' <<<"$(printf '%s\n' "$OUT" | tail -n 1)"
run_cod job versions "$ID1" --output json
expect_eq "job versions json" "$(jq -c '[.[].Version]' <<<"$OUT")" "[1]"

# ---- nodes
run_cod node list
expect_eq "node list exits 0" "$RC" 0
header=$(printf '%s\n' "$OUT" | head -n 1)
for col in ID TYPE APPROVAL STATUS LABELS CPU MEMORY DISK GPU; do
	expect_contains "node list header has $col" "$header" "$col"
done
expect_contains "node list shows the orchestrator" "$OUT" "Requester"
expect_contains "node list shows its approval" "$OUT" "APPROVED"
expect_contains "node list shows its connection" "$OUT" "CONNECTED"
run_cod node list --output json
expect_eq "node list json: the orchestrator's node" "$(jq -r '.[0].Info.NodeType' <<<"$OUT")" "Requester"
NODE=$(jq -r '.[0].Info.NodeID' <<<"$OUT")
check "node ID is known" test -n "$NODE"
run_cod node list --show version,features
expect_eq "node list --show exits 0" "$RC" 0
for col in VERSION ARCHITECTURE OS ENGINES "INPUTS FROM" OUTPUTS; do
	expect_contains "node list --show version,features has $col" "$OUT" "$col"
done
expect_not_contains "node list --show replaces the default groups" "$(head -n 1 <<<"$OUT")" "LABELS"
run_cod node list --filter-approval PENDING --output json
expect_eq "node list --filter-approval PENDING is empty" "$(jq length <<<"$OUT")" 0
run_cod node list --filter-status CONNECTED --output json
expect_eq "node list --filter-status CONNECTED" "$(jq length <<<"$OUT")" 1
run_cod node describe "$NODE"
expect_eq "node describe exits 0" "$RC" 0
expect_contains "node describe prints yaml" "$OUT" "NodeID: $NODE"
run_cod node describe "$NODE" --output json
expect_eq "node describe json" "$(jq -r .Info.NodeID <<<"$OUT")" "$NODE"
expect_eq "node describe json membership" "$(jq -r .Membership <<<"$OUT")" "APPROVED"
run_cod node describe n-does-not-exist
expect_eq "node describe of an unknown node exits 1" "$RC" 1
expect_contains "unknown node is named" "$ERR" "not found"
run_cod node approve "$NODE"
expect_eq "approving an approved node exits 1" "$RC" 1
expect_contains "approving an approved node says why" "$ERR" "Error: node is already approved"
run_cod node delete "$NODE" -m "test"
expect_eq "deleting the orchestrator's node exits 1" "$RC" 1
expect_contains "deleting the orchestrator's node says why" "$ERR" "cannot be deleted"

# ---- agent
run_cod agent alive
expect_eq "agent alive exits 0" "$RC" 0
expect_eq "agent alive prints Status: OK" "$OUT" "Status: OK"
run_cod agent alive --output json
expect_eq "agent alive json" "$(jq -r .Status <<<"$OUT")" "OK"
run_cod agent version
expect_eq "agent version exits 0" "$RC" 0
expect_contains "agent version prints yaml" "$OUT" "GitVersion: v"
run_cod agent version --output json
SERVER_VERSION=$(jq -r .GitVersion <<<"$OUT")
run_cod agent node --output json
expect_eq "agent node is the orchestrator's node" "$(jq -r .NodeID <<<"$OUT")" "$NODE"
run_cod agent node
expect_contains "agent node prints yaml" "$OUT" "NodeType: Requester"
run_cod agent config --output json
expect_eq "agent config exits 0" "$RC" 0
expect_eq "agent config shows the server's DataDir" "$(jq -r .DataDir <<<"$OUT")" "$COD_DIR"
run_cod agent config
expect_contains "agent config prints yaml" "$OUT" "API:"

# ---- version
run_cod version
expect_eq "version exits 0" "$RC" 0
expect_eq "version header" "$(head -n 1 <<<"$OUT" | tr -s ' ')" "CLIENT SERVER"
expect_eq "version shows both versions" "$(tail -n 1 <<<"$OUT" | tr -s ' ')" "$SERVER_VERSION $SERVER_VERSION"
run_cod version --output json
expect_eq "version json has the client" "$(jq -r .clientVersion.GitVersion <<<"$OUT")" "$SERVER_VERSION"
expect_eq "version json has the server" "$(jq -r .serverVersion.GitVersion <<<"$OUT")" "$SERVER_VERSION"
run_cod version --client --output json
expect_eq "version --client json has no server" "$(jq -r 'has("serverVersion")' <<<"$OUT")" "false"
run_cod version --client
expect_eq "version --client leaves SERVER blank" "$(tail -n 1 <<<"$OUT" | tr -s ' ' | sed 's/ $//')" "$SERVER_VERSION"

# ---- stop and rerun
run_cod job stop "$ID1"
expect_eq "job stop exits 0" "$RC" 0
expect_contains "job stop prints the evaluation" "$OUT" "Job stop successfully submitted with evaluation ID: "
run_cod job describe "$ID1" --output json
expect_eq "the stopped job is Stopped" "$(jq -r .Job.State.StateType <<<"$OUT")" "Stopped"
run_cod job stop "$ID1"
expect_eq "stopping a stopped job exits 1" "$RC" 1
expect_contains "stopping a stopped job says so" "$ERR" "is already in a terminal state (Stopped)"
run_cod job stop --quiet --reason "no longer needed" "${ID2:0:10}"
expect_eq "job stop --quiet exits 0" "$RC" 0
expect_eq "job stop --quiet prints nothing" "$OUT" ""
run_cod job describe "$ID2" --output json
expect_eq "job stop --reason is the state message" "$(jq -r .Job.State.Message <<<"$OUT")" "no longer needed"
run_cod job stop j-00000000-0000-0000-0000-000000000000
expect_eq "stopping an unknown job exits 1" "$RC" 1

run_cod job rerun "$ID1"
expect_eq "job rerun exits 0" "$RC" 0
expect_contains "job rerun prints the new version" "$OUT" "Job successfully rerun. Job ID: $ID1, version 2, evaluation "
run_cod job describe "$ID1" --output json
expect_eq "the rerun job has version 2" "$(jq -r .Job.Version <<<"$OUT")" 2
check "the rerun job is Pending or Queued again" grep -Eq "^(Pending|Queued)$" <<<"$(jq -r .Job.State.StateType <<<"$OUT")"
run_cod job versions "$ID1" --output json
expect_eq "job versions lists both versions" "$(jq -c '[.[].Version]' <<<"$OUT")" "[1,2]"
run_cod job history "$ID1" --all-versions --output json
expect_eq "job history --all-versions spans both versions" "$(jq -c '[.[].JobVersion] | unique' <<<"$OUT")" "[1,2]"
run_cod job history "$ID1" --version 1 --output json
expect_eq "job history --version 1" "$(jq -c '[.[].JobVersion] | unique' <<<"$OUT")" "[1]"
run_cod job rerun "$ID3"
expect_eq "rerunning a pending job exits 1" "$RC" 1
expect_contains "rerunning a pending job says why" "$ERR" "cannot be rerun"

# ---- resubmission
run_cod job run --wait=false "$REF_JOBS/noop.yaml"
expect_eq "resubmitting an unchanged spec exits 1" "$RC" 1
expect_contains "resubmitting an unchanged spec says so" "$ERR" "no changes detected"
expect_contains "resubmitting an unchanged spec hints --force" "$ERR" "--force"
run_cod job run --wait=false --force "$REF_JOBS/noop.yaml"
expect_eq "job run --force resubmits" "$RC" 0
expect_eq "the resubmitted job keeps its ID" "$OUT" "$ID2"

# ---- waiting: no compute nodes, so the wait times out with a warning
sed 's/^Name: .*/Name: waiter/' "$REF_JOBS/docker-output.yaml" >"$TEST_TMP/waiter.yaml"
start_s=$SECONDS
run_cod job run --wait-timeout-secs 1 "$TEST_TMP/waiter.yaml"
elapsed=$((SECONDS - start_s))
expect_eq "job run --wait-timeout-secs exits 0 on timeout" "$RC" 0
check "job run --wait-timeout-secs 1 returns within a few seconds ($elapsed s)" test "$elapsed" -le 5
WID=$(sed -n 's/^Job successfully submitted. Job ID: //p' <<<"$OUT")
check "job run prints the submitted ID" grep -Eq "$ID_RE" <<<"$WID"
expect_contains "job run announces the wait" "$OUT" "Checking job status... (Enter Ctrl+C to exit at any time, your job will continue running):"
expect_contains "job run prints the job's events" "$OUT" "Job submitted"
expect_contains "job run hints describe" "$OUT" "To get more details about the run, execute:"
expect_contains "job run hints describe with the ID" "$OUT" "cod job describe $WID"
expect_contains "job run hints executions" "$OUT" "cod job executions $WID"
expect_contains "job run hints get for a job with a publisher" "$OUT" "cod job get $WID"
expect_contains "the timeout is a warning" "$ERR" "job $WID is still "
expect_contains "the timeout warning says how to check later" "$ERR" "cod job describe $WID"

sed 's/^Name: .*/Name: quiet-waiter/' "$REF_JOBS/docker.yaml" >"$TEST_TMP/quiet.yaml"
run_cod job run --id-only --wait-timeout-secs 1 "$TEST_TMP/quiet.yaml"
expect_eq "job run --id-only with wait exits 0 on timeout" "$RC" 0
check "job run --id-only prints only the ID while waiting" grep -Eq "$ID_RE" <<<"$OUT"
expect_not_contains "job run without a publisher has no get hint" "$OUT" "cod job get"

# --dry-run submits nothing
run_cod job list --namespace '*' --labels '' --output json
before=$(jq length <<<"$OUT")
run_cod job run --dry-run "$REF_JOBS/wasm.yaml"
expect_eq "job run --dry-run exits 0" "$RC" 0
expect_contains "job run --dry-run prints the spec" "$OUT" "Name: Wasm Job"
run_cod job list --namespace '*' --labels '' --output json
expect_eq "job run --dry-run submits nothing" "$(jq length <<<"$OUT")" "$before"

# stdin
run_cod job run --wait=false - <"$REF_JOBS/docker-hello.yaml"
expect_eq "job run - reads stdin" "$RC" 0
check "job run - prints the ID" grep -Eq "$ID_RE" <<<"$OUT"
