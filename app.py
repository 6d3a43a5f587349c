"""rp_eval's app: `python app.py [--host H] [--port P] [--auth users.yaml]` (also the Spaces entry point).

With no models configured, the first start builds the tiny offline demo models into the workspace; later
starts reuse them. The page and an OpenAI-compatible API (/v1) are served together.
"""

from rp_eval.server import arguments, serve

if __name__ == "__main__":
    raise SystemExit(serve(arguments(__doc__.splitlines()[0]).parse_args()))
