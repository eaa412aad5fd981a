"""The web UI: HTML pages and static assets from ``frontend/``, served by the same app."""

import os
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

# The repository's frontend/ by default; FRONTEND_DIR points elsewhere when the code is installed as a package.
FRONTEND_DIR = Path(os.environ.get("FRONTEND_DIR") or Path(__file__).resolve().parents[2] / "frontend")
PAGES = {"/": "index.html", "/login": "login.html", "/register": "register.html",
         "/dashboard": "dashboard.html", "/guide": "guide.html"}

router = APIRouter(tags=["pages"], include_in_schema=False)


def page_file(name: str) -> Path:
    return FRONTEND_DIR / "pages" / name


def _serve(name: str) -> FileResponse:
    path = page_file(name)
    if not path.is_file():
        raise HTTPException(404, "Page not found.")
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


for route, filename in PAGES.items():
    router.add_api_route(route, (lambda f=filename: _serve(f)), methods=["GET"], name=f"page:{filename}")


@router.get("/dashboard/jobs/{job_id}")
async def job_page(job_id: str):
    """One job's detail page; the page reads the id from its URL and asks the API (404s are its own)."""
    return _serve("job.html")
