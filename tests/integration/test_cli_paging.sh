#!/usr/bin/env bash
# Pagination as the aws CLI v2 does it (issue 18, CLI conventions): list and lookup commands fetch
# every page and print them merged without the pagination members; --page-size, --max-items with
# a NextToken, --starting-token, --no-paginate; the service's own --marker makes one call.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_home
for _ in $(seq 25); do kms create-key >/dev/null; done
ids() { "$PY" -c 'import json,sys; print(" ".join(k["KeyId"] for k in json.load(sys.stdin)["Keys"]))'; }
members() { "$PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))'; }
count() { "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)[sys.argv[1]]))' "$1"; }
token() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["NextToken"])'; }

ALL=$(kms list-keys --no-paginate --limit 1000 | ids)
assert_eq "$(wc -w <<<"$ALL")" 25 "the home holds 25 keys (one call of 1000)"
OUT=$(kms list-keys)
assert_eq "$(members <<<"$OUT")" "Keys" "list-keys prints the keys without Truncated or NextMarker"
assert_eq "$(ids <<<"$OUT")" "$ALL" "every key, in the service's order"
assert_eq "$(kms list-keys --page-size 4 | ids)" "$ALL" "--page-size 4: seven calls, the same list"
# As aws (awscli's check_should_enable_pagination): the service's own page size makes one call.
assert_eq "$(kms list-keys --limit 3 | ids)" "$(head -n 1 <<<"$ALL" | cut -d' ' -f1-3)" "the service's --limit makes one call of that size, as with aws"
assert_eq "$(kms list-keys --limit 3 | members)" "Keys NextMarker Truncated" "and prints its Truncated and NextMarker"
TEXT=$(kms list-keys --output text)
assert_eq "$(head -n 1 <<<"$TEXT" | cut -f1)" "KEYS" "--output text starts with the first key, not the Truncated flag"
assert_eq "$(wc -l <<<"$TEXT")" 25 "one line per key"

# --max-items, then --starting-token, whatever the page sizes of each run
P1=$(kms list-keys --max-items 7)
assert_eq "$(members <<<"$P1")" "Keys NextToken" "--max-items 7 prints a NextToken"
assert_eq "$(count Keys <<<"$P1")" 7 "and 7 keys"
P2=$(kms list-keys --max-items 7 --page-size 3 --starting-token "$(token <<<"$P1")")
assert_eq "$(count Keys <<<"$P2")" 7 "--starting-token goes on with the next 7 (pages of 3)"
P3=$(kms list-keys --page-size 10 --starting-token "$(token <<<"$P2")")
assert_eq "$(members <<<"$P3")" "Keys" "the last part has no NextToken"
assert_eq "$(echo $(ids <<<"$P1") $(ids <<<"$P2") $(ids <<<"$P3"))" "$ALL" "the three parts are the whole list, once each, in order"
P4=$(kms list-keys --max-items 25)
assert_eq "$(members <<<"$P4")" "Keys" "--max-items of exactly all: no NextToken"

# one call: --no-paginate, or the service's own marker
RAW=$(kms list-keys --no-paginate --limit 3)
assert_eq "$(members <<<"$RAW")" "Keys NextMarker Truncated" "--no-paginate prints the response as it is"
assert_eq "$(count Keys <<<"$RAW")" 3 "one page of 3"
MARKER=$(json_get NextMarker <<<"$RAW")
NEXT=$(kms list-keys --marker "$MARKER" --limit 3)
assert_eq "$(members <<<"$NEXT")" "Keys NextMarker Truncated" "--marker makes one call, as aws does"
assert_eq "$(echo $(ids <<<"$RAW") $(ids <<<"$NEXT"))" "$(echo "$ALL" | cut -d' ' -f1-6)" "and goes on where the marker says"
expect_usage_error "argument --starting-token: not a NextToken" kms list-keys --starting-token bm90LWEtdG9rZW4=
expect_usage_error "--starting-token goes with the whole listing" kms list-keys --no-paginate --starting-token "$(token <<<"$P1")"
expect_usage_error "--max-items and --page-size take a number of at least 1" kms list-keys --max-items 0
kms list-keys --help | grep -q -- "--starting-token" && ok "list-keys --help lists the paging options"

# lookup-events: past the service's 50 per page; IAM's Marker/IsTruncated
for _ in $(seq 40); do kms list-aliases --no-paginate >/dev/null; done
assert_eq "$(kms lookup-events | members)" "Events" "lookup-events prints every page"
EVENTS=$(kms lookup-events | count Events)
[ "$EVENTS" -gt 50 ] && ok "more than one page of 50 events ($EVENTS)" || fail "lookup-events printed $EVENTS events"
assert_eq "$(kms lookup-events --max-items 60 | count Events)" 60 "--max-items 60 across two pages"
for u in a b c; do kms create-user --user-name "$u" >/dev/null; done
U1=$(kms list-users --max-items 2)
assert_eq "$(members <<<"$U1")" "NextToken Users" "list-users --max-items 2: a NextToken"
U2=$(kms list-users --starting-token "$(token <<<"$U1")")
assert_eq "$(( $(count Users <<<"$U1") + $(count Users <<<"$U2") ))" "$(kms list-users | count Users)" \
    "and the rest of IAM's users after it"
