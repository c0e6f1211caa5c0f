# HTTP conformance corpus and fuzzing (issue 3).
