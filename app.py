"""Opens the web chat: `python app.py` is `qa serve` (same options: --host, --port)."""

import sys

from qa.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]], prog_name="app.py")
