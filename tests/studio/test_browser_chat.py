"""Chat in a real browser: two models side by side on one conversation, answers streamed in
piece by piece, then the last two answers handed to a labeling session."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.studio.test_browser import shot

# Records every distinct length the answer in each chat column had, as the page redraws it.
WATCH = """() => {
  window.__lengths = {a: [], b: []};
  for (const side of ['a', 'b']) {
    const root = document.querySelector('#chat-' + side);
    new MutationObserver(() => {
      const bots = root.querySelectorAll('.message.bot, [data-testid="bot"]');
      const last = bots[bots.length - 1];
      const n = last ? last.innerText.length : 0;
      const seen = window.__lengths[side];
      if (n && seen[seen.length - 1] !== n) seen.push(n);
    }).observe(root, {subtree: true, childList: true, characterData: true});
  }
}"""


def test_two_models_stream_side_by_side_and_the_pair_goes_to_labeling(studio, page, tmp_path: Path) -> None:  # noqa: F811
    from backends.worker.models import resolve_model_path

    tiny = str(studio.ctx.data_dir / "tiny-copy")  # a second model, a folder the studio serves
    shutil.copytree(resolve_model_path("builtin:tiny-llama"), tiny)
    try:
        page.goto(studio.url)
        page.get_by_role("tab", name="Chat").click()
        for label, value in (("Model A", "builtin:tiny-llama"), ("Model B (side by side)", tiny)):
            box = page.get_by_label(label, exact=True)
            box.click()
            box.fill(value)
            box.press("Enter")
        page.locator("#chat-b").wait_for(state="visible")
        page.locator("#chat-system textarea").fill("You are terse.")
        page.evaluate(WATCH)
        page.locator("#chat-input textarea").fill("Say something about rivers.")
        page.locator("#chat-input textarea").press("Enter")
        # both servers start (seconds), then the answers stream in
        page.wait_for_function(
            "() => window.__lengths.a.length > 3 && window.__lengths.b.length > 3", timeout=240_000
        )
        page.wait_for_function(
            "() => !document.querySelector('#chat-note')?.innerText.includes('Starting')", timeout=240_000
        )
        page.wait_for_timeout(1500)
        lengths = page.evaluate("() => window.__lengths")
        # streamed: each answer was drawn at several growing lengths before its last
        for side in ("a", "b"):
            seen = lengths[side]
            assert len(seen) > 3 and seen[-1] > seen[1], (side, seen)
        shot(page, tmp_path, "chat.png")
        page.get_by_role("button", name="Send last two answers to labeling").click()
        page.wait_for_function(
            "() => document.querySelector('#chat-note').innerText.includes('created')", timeout=30_000
        )
        (session,) = [s for s in studio.ctx.store.sessions() if s.name.startswith("chat-")]
        (item,) = studio.ctx.store.items(session.id)
        assert item.prompt[0] == {"role": "system", "content": "You are terse."}
        assert item.prompt[-1] == {"role": "user", "content": "Say something about rivers."}
        assert len(item.responses) == 2 and all(r.strip() for r in item.responses)
        assert item.meta["models"][0] == "builtin:tiny-llama"
    finally:
        studio.ctx.servers.stop_all()
