#!/usr/bin/env python3
"""How the matcher does for small organizations (a handful of rules), simulated from a dev set.

    python3 scripts/small-organizations.py DATASET.json [--rules 3] [--examples 3] [--draws 10]
        [--seed 0] [--binary target/release/switchboard] [-- extra eval-matcher flags]

Each draw picks `--rules` intents of the dataset at random (their first `--examples` examples
become the rules), keeps their queries as in scope, and takes 60 queries of *other* intents as
out of scope (no rule covers them: the bot should hand them over). Each draw is measured with
`switchboard eval-matcher --json` (what the bot runs by default), and the averages printed.
The method behind docs/matching.md § Small organizations.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("dataset")
parser.add_argument("--rules", type=int, default=3)
parser.add_argument("--examples", type=int, default=3)
parser.add_argument("--draws", type=int, default=10)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--binary", default="target/release/switchboard")
args, extra = parser.parse_known_args()
extra = [a for a in extra if a != "--"]

data = json.load(open(args.dataset))
ids = [i["id"] for i in data["intents"]]
results = []
with tempfile.TemporaryDirectory() as tmp:
    for draw in range(args.draws):
        rnd = random.Random(args.seed + draw)
        picked = set(rnd.sample(ids, args.rules))
        intents = [
            {"id": i["id"], "answer": "-", "examples": i["examples"][: args.examples]}
            for i in data["intents"]
            if i["id"] in picked
        ]
        in_scope = [q for q in data["queries"] if q["intent"] in picked]
        others = [{"text": q["text"], "intent": None} for q in data["queries"] if q["intent"] not in picked]
        small = {
            "name": f"small-{draw}",
            "language": data.get("language", "en"),
            "intents": intents,
            "queries": in_scope + rnd.sample(others, min(60, len(others))),
        }
        path = os.path.join(tmp, f"small-{draw}.json")
        json.dump(small, open(path, "w"))
        out = subprocess.run(
            [args.binary, "eval-matcher", "--dataset", path, "--json", *extra],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        results.append(json.loads(out))

avg = lambda key: sum(r[key] for r in results) / len(results)
print(
    f"{args.draws} organizations of {args.rules} rules ({args.examples} examples each) from "
    f"{os.path.basename(args.dataset)}: in-scope {avg('in_scope_accuracy'):.1%}, "
    f"suggestion hits {avg('suggestion_hit_rate'):.1%}, out-of-scope recall {avg('oos_recall'):.1%}, "
    f"wrong {avg('wrong_answer_rate'):.1%}"
)
