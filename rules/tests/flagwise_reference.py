"""FlagWise's rule evaluation, as its Python engine does it, for the differential test
(rules/tests/flagwise_differential.rs): reads the flagwise-compat pack, then one event per
line on stdin ({"prompt": ..., "model": ...}), and prints the ids of the rules that match
each, sorted, as a JSON list per line. With `--bench` (after the pack) it reads every event
first, then prints only {"seconds": time spent matching, "flagged": events with a match}.

Semantics: keyword rules `kw.lower() in prompt.lower()`; regex rules
`re.search(pattern, prompt, re.IGNORECASE)`; model rules `model.lower()` in the lower-cased
deny list.
"""

import json
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    RULES = tomllib.load(f)["rules"]

COMPILED = {r["id"]: re.compile(r["pattern"], re.IGNORECASE) for r in RULES if r["kind"] == "regex"}


def matches(rule, prompt, model):
    kind = rule["kind"]
    if kind == "keyword":
        lower = prompt.lower()
        return any(k.lower() in lower for k in rule["keywords"])
    if kind == "regex":
        return COMPILED[rule["id"]].search(prompt) is not None
    if kind == "model":
        return model.lower() in [m.lower() for m in rule.get("deny", [])]
    raise ValueError(f"unknown kind {kind}")


if sys.argv[2:] == ["--bench"]:
    import time

    events = [json.loads(line) for line in sys.stdin]
    started = time.perf_counter()
    # FlagWise scores an event by summing every matching rule, so it tests them all.
    flagged = sum(bool([r for r in RULES if matches(r, e["prompt"], e["model"])]) for e in events)
    print(json.dumps({"seconds": time.perf_counter() - started, "flagged": flagged}))
else:
    for line in sys.stdin:
        event = json.loads(line)
        hits = sorted(r["id"] for r in RULES if matches(r, event["prompt"], event["model"]))
        print(json.dumps(hits))
