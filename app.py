"""Opens the web chat: `python app.py` (the same as `qa serve`)."""

from qa.web import main

if __name__ == "__main__":
    main()
