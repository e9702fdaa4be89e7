"""cnnkit's benchmarks: one script per measurement, their results as data in benchmarks/results/, and the runner
(`python -m benchmarks`, see __main__.py) that lists and runs them and writes BENCHMARKS.md from the results."""
