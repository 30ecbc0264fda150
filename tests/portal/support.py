"""What the portal's browser tests do again and again: sign in, and move the focus with Tab."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page

from tests.registry.support import ADMIN


def sign_in(page: Page, server: str, client_id: str = ADMIN[0], secret: str = ADMIN[1]) -> None:
    page.goto(f"{server}/sign-in")
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_role("button", name="Sign in", exact=True).click()


def serious_violations(page: Page, exclude: list[list[str]] | None = None) -> list[str]:
    """axe-core (shipped inside axe-playwright-python) on the page as it stands."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context={"exclude": exclude} if exclude else None)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


FOCUS_STATE = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    focusVisible: el.matches(":focus-visible"),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    inView: box.width > 0 && box.height > 0 && box.left >= 0,
  };
}"""


def tab_to(page: Page, target: Locator, limit: int = 80) -> None:
    """Presses Tab until `target` has the focus, which must show (an outline, on screen)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            state = page.evaluate(FOCUS_STATE)
            assert state == {"focusVisible": True, "outline": True, "inView": True}, state
            return
    pytest.fail(f"{target} is not reachable with Tab")
