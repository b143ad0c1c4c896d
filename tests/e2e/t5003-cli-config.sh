#!/usr/bin/env bash
# t5003-cli-config: `cod config list` and `cod config set` against an
# isolated COD_DIR, and the precedence of config file < environment <
# flags < -c Key=Value. Ends by pointing the client at a real orchestrator
# through the config file alone.
. "$(dirname "$0")/lib.sh"

CFG="$COD_DIR/config.yaml"

# value_of KEY: the VALUE column of `cod config list` output in $OUT
value_of() { jq -r --arg k "$1" '.[] | select(.Key == $k) | .Value' <<<"$OUT"; }

# ---- defaults
run_cod config list
expect_eq "config list exits 0" "$RC" 0
expect_eq "config list header" "$(head -n 1 <<<"$OUT" | tr -s ' ')" "KEY VALUE DESCRIPTION"
check "config list shows API.Port with its default" grep -Eq '^API\.Port +1234 +REST API port' <<<"$OUT"
expect_contains "config list shows job defaults" "$OUT" "JobDefaults.Batch.Task.Resources.Memory"
run_cod config list --output json
expect_eq "config list json exits 0" "$RC" 0
expect_eq "config list json: API.Port default" "$(value_of API.Port)" "1234"
expect_eq "config list json: a description" \
	"$(jq -r '.[] | select(.Key == "API.Port") | .Description' <<<"$OUT" | cut -c1-13)" "REST API port"
expect_eq "config list json: DataDir is COD_DIR" "$(value_of DataDir)" "$COD_DIR"
run_cod config list --output yaml
expect_contains "config list yaml" "$OUT" "- Key: API.Port"
run_cod config list --output csv --hide-header
check "config list csv row" grep -q '^API.Port,1234,' <<<"$OUT"
check "no config file was written by listing" test ! -e "$CFG"

# ---- config set writes the file
run_cod config set API.Port 4321
expect_eq "config set KEY VALUE exits 0" "$RC" 0
expect_eq "config set reports what it did" "$OUT" "Set API.Port = 4321 in $CFG"
check "config set created the config file" test -s "$CFG"
expect_contains "the file holds the nested key" "$(cat "$CFG")" "Port: 4321"
run_cod config list --output json
expect_eq "config list shows the new value" "$(value_of API.Port)" "4321"
run_cod config list
check "config list table shows 4321" grep -Eq '^API\.Port +4321 ' <<<"$OUT"

run_cod config set logging.level=debug
expect_eq "config set KEY=VALUE exits 0 (case-insensitive key)" "$RC" 0
expect_eq "config set names the key as the table spells it" "$OUT" "Set Logging.Level = debug in $CFG"
run_cod config set Labels=zone=eu,gpu=no
expect_eq "config set of a map value exits 0" "$RC" 0
run_cod config list --output json
expect_eq "config set keeps the other keys" "$(value_of API.Port)" "4321"
expect_eq "config set of Logging.Level" "$(value_of Logging.Level)" "debug"
expect_eq "config set of a map" "$(value_of Labels)" "zone=eu,gpu=no"
run_cod config set Logging.Level=info
expect_eq "config set overwrites a key" "$RC" 0

# ---- precedence: env over file, flags over env, -c over everything
COD_API_PORT=5555 run_cod config list --output json
expect_eq "COD_API_PORT overrides the config file" "$(value_of API.Port)" "5555"
COD_API_PORT=5555 run_cod config list --api-port 7777 --output json
expect_eq "--api-port overrides COD_API_PORT" "$(value_of API.Port)" "7777"
COD_API_PORT=5555 run_cod config list -c API.Port=6666 --api-port 7777 --output json
expect_eq "-c API.Port=N overrides env and flags" "$(value_of API.Port)" "6666"
run_cod config list --data-dir "$TEST_TMP/elsewhere" --output json
expect_eq "another data dir has its own (absent) config file" "$(value_of API.Port)" "1234"

# ---- -c FILE: read it, and config set writes it
ALT="$TEST_TMP/alt/cluster.yaml"
run_cod config set -c "$ALT" API.Port=9999
expect_eq "config set -c FILE exits 0" "$RC" 0
expect_eq "config set -c FILE writes that file" "$OUT" "Set API.Port = 9999 in $ALT"
check "the -c file exists" test -s "$ALT"
run_cod config list -c "$ALT" --output json
expect_eq "config list -c FILE reads it instead of the default file" "$(value_of API.Port)" "9999"
run_cod config list --output json
expect_eq "the default file is unchanged" "$(value_of API.Port)" "4321"

# ---- errors
run_cod config set API.Prot 1
expect_eq "config set of an unknown key exits 1" "$RC" 1
expect_contains "an unknown key is named" "$ERR" 'unknown config key "API.Prot"'
expect_contains "an unknown key gets a did-you-mean hint" "$ERR" 'did you mean "API.Port"'
run_cod config set API.Port=abc
expect_eq "config set of a non-integer exits 1" "$RC" 1
expect_contains "a non-integer is explained" "$ERR" '"abc" is not an integer'
run_cod config set API.Port=70000
expect_eq "config set of an out-of-range port exits 1" "$RC" 1
expect_contains "an out-of-range port is explained" "$ERR" "out of range"
run_cod config set Orchestrator.Enabled=perhaps
expect_eq "config set of a non-boolean exits 1" "$RC" 1
run_cod config set Orchestrator.NodeManager.DisconnectTimeout=soon
expect_eq "config set of a bad duration exits 1" "$RC" 1
run_cod config list --output json
expect_eq "failed sets leave the file alone" "$(value_of API.Port)" "4321"
run_cod config list -c Logging.Levle=debug
expect_eq "-c with an unknown key exits 1" "$RC" 1
expect_contains "-c with an unknown key gets a hint" "$ERR" 'did you mean "Logging.Level"'
COD_API_PORT=notaport run_cod config list
expect_eq "a bad environment value exits 1" "$RC" 1
expect_contains "a bad environment value names the variable" "$ERR" "COD_API_PORT"
run_cod config set A=1 2
expect_eq "config set with both forms is a usage error" "$RC" 2
run_cod config set
expect_eq "config set without arguments is a usage error" "$RC" 2

# a broken config file is reported with its name
mkdir -p "$TEST_TMP/broken"
printf 'API:\n  Port: [1, 2\n' >"$TEST_TMP/broken/config.yaml"
run_cod config list --data-dir "$TEST_TMP/broken"
expect_eq "a broken config file exits 1" "$RC" 1
expect_contains "a broken config file is named" "$ERR" "$TEST_TMP/broken/config.yaml"

# ---- the client follows the config file
start_orchestrator -c BatchScheduling=false || { not_ok "orchestrator starts"; exit 1; }
ok "orchestrator starts"
expect_eq "BatchScheduling=false keeps the default policy" "$(sched_policy "$ORCH_PID")" 0
port=$COD_API_PORT
unset COD_API_PORT
run_cod agent alive
expect_eq "with API.Port=4321 in the file and no server there, the client fails" "$RC" 1
expect_contains "the client used the file's port" "$ERR" "127.0.0.1:4321"
run_cod config set API.Port "$port"
expect_eq "config set to the orchestrator's port" "$RC" 0
run_cod agent alive
expect_eq "the client reaches the orchestrator through the config file" "$RC" 0
expect_eq "agent alive via config file" "$OUT" "Status: OK"
run_cod job list --output json
expect_eq "job list via config file" "$OUT" "[]"
