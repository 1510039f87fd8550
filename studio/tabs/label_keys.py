"""The Label tab's keyboard, loaded once per page (`launch(js=...)`).

Pairs: 1 = left better, 2 = right better, 3 = tie, 4 = both bad. Rankings: press the
answers' letters best first (A-I), `=` ties the next one with the previous, Backspace takes
the last letter back, Enter submits. Both: s = skip, u = undo. Keys are ignored while
typing in a text box (typing an order into the order box and pressing Enter works too),
and a key only acts when its button is shown and enabled."""

KEYBOARD_JS = """
() => {
  const pairKeys = {"1": "label-left", "2": "label-right", "3": "label-tie", "4": "label-bad"};
  const anyKeys = {"s": "label-skip", "u": "label-undo"};
  const LETTERS = "ABCDEFGHI";
  const shownEl = (el) => el !== null && el.offsetParent !== null;
  const press = (id) => {
    const button = document.getElementById(id);
    if (!shownEl(button) || button.disabled) return false;
    button.click();
    return true;
  };
  const orderBox = () => document.querySelector("#label-rank-order input, #label-rank-order textarea");
  const setOrder = (box, tokens) => {
    // Letters joined by ">" (better than the next) or "=" (tied with the previous).
    let text = "", tie = false;
    for (const t of tokens) {
      if (t === "=") { tie = true; continue; }
      text += text ? (tie ? " = " : " > ") + t : t;
      tie = false;
    }
    if (tie) text += " =";
    box.value = text;
    box.dispatchEvent(new Event("input", {bubbles: true}));
  };
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const rank = document.getElementById("label-rank");
    if (shownEl(rank)) {
      const box = orderBox();
      const tokens = box ? (box.value.toUpperCase().match(/[A-I]|=/g) || []) : [];
      const answers = [...document.querySelectorAll("[id^='label-answer-']")].filter(shownEl).length;
      const i = e.key.length === 1 ? LETTERS.indexOf(e.key.toUpperCase()) : -1;
      if (box && i >= 0 && i < answers) {
        if (!tokens.includes(LETTERS[i])) setOrder(box, [...tokens, LETTERS[i]]);
        e.preventDefault();
        return;
      }
      if (box && e.key === "=") {
        if (tokens.length && tokens[tokens.length - 1] !== "=") setOrder(box, [...tokens, "="]);
        e.preventDefault();
        return;
      }
      if (box && e.key === "Backspace") {
        setOrder(box, tokens.slice(0, -1));
        e.preventDefault();
        return;
      }
      if (e.key === "Enter" && press("label-rank-submit")) { e.preventDefault(); return; }
    } else if (pairKeys[e.key] && press(pairKeys[e.key])) {
      e.preventDefault();
      return;
    }
    if (anyKeys[e.key] && press(anyKeys[e.key])) e.preventDefault();
  });
}
"""
