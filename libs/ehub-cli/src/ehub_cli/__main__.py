from ehub_cli.main import app

app(prog_name="ehub")
