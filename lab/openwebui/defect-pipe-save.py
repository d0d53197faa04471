"""The October 2025 incident, injected into a real Open WebUI: saving an existing function (the pipe save)
fails with a JSON error. Everything else works, so only a checklist that saves a pipe twice catches it."""

import importlib.util
import pathlib
import sys

# Found without importing it (importing Open WebUI would set up its database).
package = importlib.util.find_spec("open_webui").submodule_search_locations[0]
source = pathlib.Path(package) / "routers" / "functions.py"
text = source.read_text()
anchor = "async def _update_function(request, id, form_data, user, db, version_id=None):\n    try:\n"
if anchor not in text:
    sys.exit(f"{source}: the function-save path changed in this version; update lab/openwebui/defect-pipe-save.py")
broken = anchor + "        raise ValueError('Unexpected end of JSON input (pipe save)')\n"
source.write_text(text.replace(anchor, broken, 1))
print(f"{source}: pipe save broken")
