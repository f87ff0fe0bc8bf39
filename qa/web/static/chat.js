// Run once by the sources panel as it loads (`js_on_load`). What it installs lives on
// the document and on `window`: the chat and the panel re-render their content, and
// listeners on their elements would be lost with it.

// A click on `[n]` in the chat opens the answer's sources, scrolls to the cited
// sentence and flashes it.
if (!window.__qaCiteHandler) {
  window.__qaCiteHandler = function (event) {
    const link = event.target.closest && event.target.closest('a.qa-cite-ref, a[href^="#cite-"]');
    if (!link) return;
    const id = (link.getAttribute('href') || '').slice(1);
    const target = document.getElementById(id);
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    for (let node = target.parentElement; node; node = node.parentElement) {
      if (node.tagName === 'DETAILS') node.open = true;
    }
    target.scrollIntoView({behavior: 'smooth', block: 'center'});
    target.classList.add('qa-flash');
    target.focus({preventScroll: true});
    setTimeout(() => target.classList.remove('qa-flash'), 2000);
  };
  document.addEventListener('click', window.__qaCiteHandler, true);
}

// The tab's title names the corpus size, as the header does: called after an upload
// has refreshed the header, it makes the title follow.
window.__qaFollowCorpus = function () {
  const title = document.querySelector('#qa-header h1');
  const summary = document.querySelector('#qa-header .qa-summary');
  if (title && summary) document.title = title.textContent + ' — ' + summary.textContent;
};
