"""Grading a whole class: hand-ins in, one verdict per student out (`vmlab grade`).

Layers, each knowing only what it needs:
- `model`     the class result (`class.json`), the one source every output is written from;
- `handins`   finding hand-ins, reading them without trusting them, student ids, fingerprints;
- `flags`     what makes a hand-in worth a tutor's look: wrong lab, schema, bounds, duplicates;
- `sign`      HMAC-SHA256 signatures of reports a runner produced itself;
- `classgrade` grading every hand-in, shards and their merge;
- `outputs`   class.csv, class.json, JUnit, Gradescope results.json, the regrade preview;
- `rerun` and `sandbox`  re-running submitted code on hidden inputs in a locked-down container;
- `site`      the static class site (jinja2 templates in `templates/`).
The lab-specific parts of a re-run live with each lab: the hook its lab.toml `[rerun]` names.
"""
