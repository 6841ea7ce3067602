"""JupyterLab settings for this course (used by `make lab` and the browser tests).

`make lab` puts this folder on JUPYTER_CONFIG_PATH, so a personal ~/.jupyter still wins.
- No news and no update checks: nothing pops up over a projected lecture.
- The file browser opens on lectures/.
- lab/settings/overrides.json sets the defaults of JupyterLab's own settings (the news
  question is asked by a frontend setting, not by the server option alone).
"""

from pathlib import Path

c = get_config()  # noqa: F821 (injected by traitlets when Jupyter loads this file)

c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.default_url = "/lab/tree/lectures"
c.LabApp.app_settings_dir = str(Path(__file__).resolve().parent / "lab" / "settings")
