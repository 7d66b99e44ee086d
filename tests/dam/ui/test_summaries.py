"""The UI's helper endpoints over HTTP: card summaries and the saliency picture, with the DAM's access rules."""

from __future__ import annotations

import io

from PIL import Image

from tests.dam.conftest import upload, wait_annotated
from tests.dam.ui.conftest import photo


def test_cards_and_saliency_follow_access_rules(ui_dam):
    with ui_dam.user("owner@example.org") as owner, ui_dam.user("other@example.org") as other:
        mine = upload(owner, photo("astronaut"), "a.jpg", title="Mine").json()
        wait_annotated(owner, mine["id"])
        cards = owner.get("/api/ui/cards", params={"ids": f"{mine['id']},999999"})
        assert cards.status_code == 200
        [card] = cards.json()  # the unknown id is left out
        assert card["id"] == mine["id"] and card["caption"] and card["objects"] and card["nsfw"] is False
        # Another user's private asset is not there for them, on either endpoint.
        assert other.get("/api/ui/cards", params={"ids": str(mine["id"])}).json() == []
        assert other.get(f"/api/ui/assets/{mine['id']}/saliency.png").status_code == 404
        picture = owner.get(f"/api/ui/assets/{mine['id']}/saliency.png")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(picture.content)).mode == "L"
        # Bad input: clear 422s, and no access without signing in.
        assert owner.get("/api/ui/cards", params={"ids": "1,x"}).status_code == 422
        assert owner.get("/api/ui/cards", params={"ids": ",".join(map(str, range(1, 102)))}).status_code == 422
    with ui_dam.client() as anonymous:
        assert anonymous.get("/api/ui/cards", params={"ids": "1"}).status_code == 401
        page = anonymous.get("/")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        assert '<script type="module" src="/static/js/app.js?v=' in page.text
        assert anonymous.get("/static/js/app.js").headers["content-type"].startswith("text/javascript")
