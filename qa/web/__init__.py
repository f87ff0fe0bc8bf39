"""The web chat (`qa serve`, `python app.py`): the Gradio page, the rendering of
answers and sources into HTML, and the upload of articles.

Owns the page's layout, its templates, CSS and JavaScript. Uses the product through an
`Assistant` only; nothing here retrieves, answers or writes the index by itself.
"""
