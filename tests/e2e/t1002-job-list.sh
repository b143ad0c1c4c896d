#!/usr/bin/env bash
# Listing jobs: namespaces, label selectors, ordering and paging tokens.
. "$(dirname "$0")/lib.sh"

start_orchestrator || { not_ok "orchestrator starts"; exit 1; }

submit() { # name namespace labels-json
	jq -n --arg n "$1" --arg ns "$2" --argjson l "$3" \
		'{Job: {Name: $n, Namespace: $ns, Type: "batch", Labels: $l,
		  Tasks: [{Name: "main", Engine: {Type: "noop"}}]}}' >"$TEST_TMP/j.json"
	http PUT /api/v1/orchestrator/jobs "$TEST_TMP/j.json"
	[ "$STATUS" = 200 ]
}

fails=0
for i in $(seq 1 25); do
	env=prod; [ $((i % 2)) -eq 0 ] && env=dev
	submit "job-$i" default "{\"env\": \"$env\", \"n\": \"$i\"}" || fails=$((fails + 1))
done
for i in 1 2 3; do submit "other-$i" research '{"env": "prod"}' || fails=$((fails + 1)); done
expect_eq "28 jobs submitted" "$fails" 0

http GET "/api/v1/orchestrator/jobs"
expect_eq "list without limit returns the namespace's jobs" "$(jq_of '.Items | length' "$BODY")" 25
expect_eq "last page has empty NextToken" "$(jq_of .NextToken "$BODY")" ""
http GET "/api/v1/orchestrator/jobs?namespace=research"
expect_eq "namespace filter" "$(jq_of '.Items | length' "$BODY")" 3
http GET "/api/v1/orchestrator/jobs?namespace=*"
expect_eq "namespace * lists all" "$(jq_of '.Items | length' "$BODY")" 28
http GET "/api/v1/orchestrator/jobs?labels=env%3Ddev"
expect_eq "label selector env=dev" "$(jq_of '.Items | length' "$BODY")" 12
http GET "/api/v1/orchestrator/jobs?labels=env%20in%20(dev,prod)&labels=n%3D7"
expect_eq "two selectors combine" "$(jq_of '.Items[].Name' "$BODY")" "job-7"
http GET "/api/v1/orchestrator/jobs?labels=n%3E20"
expect_eq "gt selector" "$(jq_of '.Items | length' "$BODY")" 5

# walk every page of 7: no duplicates, no gaps, oldest first
seen=""
token=""
pages=0
while :; do
	q="limit=7"
	[ -n "$token" ] && q="next_token=$token"
	http GET "/api/v1/orchestrator/jobs?$q"
	[ "$STATUS" = 200 ] || break
	seen="$seen $(jq_of '[.Items[].Name] | join(" ")' "$BODY")"
	token=$(jq_of .NextToken "$BODY")
	pages=$((pages + 1))
	[ -n "$token" ] || break
	[ $pages -lt 10 ] || break
done
expect_eq "4 pages of 7" "$pages" 4
expect_eq "pages cover every job once, in creation order" "$(echo $seen)" "$(for i in $(seq 1 25); do printf 'job-%s ' $i; done | sed 's/ $//')"

http GET "/api/v1/orchestrator/jobs?limit=3&reverse=true"
expect_eq "reverse puts the newest first" "$(jq_of '.Items[0].Name' "$BODY")" "job-25"
http GET "/api/v1/orchestrator/jobs?limit=3&order_by=name"
expect_eq "order_by name" "$(jq_of '.Items[0].Name' "$BODY")" "job-1"

http GET "/api/v1/orchestrator/jobs?next_token=@@notatoken"
expect_eq "malformed next_token is a 400" "$STATUS" 400
expect_contains "error names next_token" "$BODY" "next_token"
http GET "/api/v1/orchestrator/jobs?limit=ten"
expect_eq "bad limit is a 400" "$STATUS" 400
expect_contains "error names limit" "$(jq_of .Message "$BODY")" "limit"
http GET "/api/v1/orchestrator/jobs?labels=env%20in%20"
expect_eq "bad selector is a 400" "$STATUS" 400
http GET "/api/v1/orchestrator/jobs?order_by=size"
expect_eq "unknown order_by is a 400" "$STATUS" 400

# CLI paging
run_cod job list --limit 5 --output json
expect_eq "cod job list --limit 5" "$(jq_of 'length' "$OUT")" 5
run_cod job list --all --output json
expect_eq "cod job list --all follows tokens" "$(jq_of 'length' "$OUT")" 25
run_cod job list --labels 'env=prod' --limit 0 --output json
expect_eq "cod job list --labels" "$(jq_of 'length' "$OUT")" 13
