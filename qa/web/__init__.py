"""The web chat (`qa serve`, `python app.py`): the Gradio page, the rendering of
answers and sources into HTML, and the upload of articles.

`app` builds the page and holds `qa serve`; `chat` answers one reader message
(`respond()`); `upload` indexes uploaded files (`add_articles()`); `render` turns
answers, refusals and sources into HTML through the autoescaping templates of
`templates/`; `static/` holds the page's stylesheet and script.

Owns the page's layout, its templates, CSS and JavaScript. Uses the product through an
`Assistant` only; nothing here retrieves, answers or writes the index by itself.
"""
