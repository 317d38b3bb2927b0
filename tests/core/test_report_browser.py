"""The HTML report in a real headless Chromium: it loads without a console error, and its controls work."""

import pytest
from test_report import diamond_with_a_failure

from browser import chromium, open_file
from flowbridge import WorkflowEngine

pytestmark = pytest.mark.skipif(chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")


@pytest.fixture
async def page(tmp_path):
    async with WorkflowEngine() as flow:
        tasks = await diamond_with_a_failure(flow)
        flow.report().to_html(tmp_path / "r.html")
    with open_file(tmp_path / "r.html") as page:
        yield page, tasks


async def test_report_opens_without_errors_with_a_bar_per_attempt_and_a_node_per_task(page):
    page, tasks = page
    assert page.errors == []
    assert page.evaluate("document.body.dataset.ready") == "1"  # the script ran to its end
    assert page.evaluate("document.querySelectorAll('svg.timeline rect.bar').length") == 5  # f never ran
    assert page.evaluate("document.querySelectorAll('svg.graph g.node').length") == 6
    shown = page.evaluate("Array.from(document.querySelectorAll('rect.bar')).map(b => b.dataset.uid)")
    assert sorted(shown) == sorted(t.uid for t in tasks[:5])


async def test_clicking_a_bar_picks_the_task_and_its_neighbours(page):
    page, tasks = page
    a, b, _, d, _, _ = tasks
    click = "new MouseEvent('click', {bubbles: true})"
    page.evaluate(f"document.querySelector('rect.bar[data-uid=\"{b.uid}\"]').dispatchEvent({click})")
    details = page.evaluate("document.getElementById('details').textContent")
    assert details.startswith(f"{b.uid} slow_inc") and f"depends on: {a.uid}" in details
    kept = page.evaluate("Array.from(document.querySelectorAll('g.node:not(.dim)')).map(n => n.dataset.uid)")
    assert sorted(kept) == sorted([a.uid, b.uid, d.uid])  # b, what it waited for, what waited for it
    assert page.errors == []


async def test_colour_by_backend_and_zoom(page):
    page, _ = page
    before = page.evaluate("document.querySelector('rect.bar').getAttribute('fill')")
    page.evaluate(
        "var s = document.getElementById('colour-by'); s.value = 'backend'; s.dispatchEvent(new Event('change'))"
    )
    after = page.evaluate("document.querySelector('rect.bar').getAttribute('fill')")
    assert before != after and after == page.evaluate("document.querySelector('rect.bar').dataset.bc")
    width = page.evaluate("parseFloat(document.querySelector('rect.bar').getAttribute('width'))")
    wheel = "new WheelEvent('wheel', {deltaY: -100, clientX: 300, bubbles: true, cancelable: true})"
    page.evaluate(f"document.querySelector('svg.timeline').dispatchEvent({wheel})")
    zoomed = page.evaluate("parseFloat(document.querySelector('rect.bar').getAttribute('width'))")
    assert zoomed == pytest.approx(width * 1.25, rel=0.05)
    assert page.errors == []
