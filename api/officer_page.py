"""The officer workbench page (援助员工作台): targets, match lists, the 131 ledger, visits.

The page is a template with its own zh/en texts over the shared page messages. It
contains no data, because its script signs in through the staff session and calls the
``/v1/assistance`` routes, so every read and write is checked and audited there.
"""

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth import require
from api.pages import LangQuery, load_messages, render_page_in
from api.permissions import Permission

router = APIRouter(dependencies=[require(Permission.PUBLIC)])

_PAGE_MESSAGES: dict[str, dict[str, object]] = json.loads(
    (Path(__file__).parent / "templates" / "officer_messages.json").read_text("utf-8")
)


@router.get("/officer", response_class=HTMLResponse, include_in_schema=False)
def officer_page(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """Officer workbench (援助员工作台): my targets, match lists, 131 ledger, due visits."""
    if lang not in _PAGE_MESSAGES:
        return render_page_in(request, "officer.html", lang)
    texts = {**load_messages()[lang], **_PAGE_MESSAGES[lang]}
    return render_page_in(request, "officer.html", lang, {"t": texts})
