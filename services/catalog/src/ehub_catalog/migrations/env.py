from ehub_core.migrations import run_env

run_env()
