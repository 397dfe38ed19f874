"""
The page `ner-serve` answers at `GET /`: type a text, press "Tag", see the entities highlighted
in it with their types and scores (displaCy's look, the colours of `ner-html`'s pages). One
self-contained document: its style and script are inline, nothing is fetched but `/predict`,
and a Content-Security-Policy allows exactly those (the inline parts by their hashes).

The text is put into the page as text nodes (never as HTML), so whatever a text or a model
answers cannot inject markup. A service started with `--api-key` asks for the key in a field
and sends it as `Authorization: Bearer KEY`; the page itself needs none.
"""
import base64
import hashlib
import json

from ner_elmo.reporting.entity_html import PALETTE, TYPE_COLORS

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 52rem; color: #222; }
h1 { font-size: 1.4rem; }
textarea { width: 100%; min-height: 7rem; font-size: 1rem; padding: .5rem; box-sizing: border-box; }
.row { display: flex; gap: .75rem; align-items: center; margin: .5rem 0 1rem; }
button { font-size: 1rem; padding: .4rem 1.2rem; cursor: pointer; }
#key { display: none; flex: 1; font-size: .9rem; padding: .3rem; }
#status { color: #666; font-size: .9rem; }
#result { line-height: 2.5; font-size: 1.05rem; white-space: pre-wrap; border-top: 1px solid #ddd; padding-top: 1rem; }
mark.entity { padding: .25em .4em; margin: 0 .2em; border-radius: .35em; line-height: 1; }
mark.entity .label { font-size: .6em; font-weight: bold; text-transform: uppercase; margin-left: .5em; vertical-align: middle; }
mark.entity .score { font-size: .6em; margin-left: .35em; vertical-align: middle; color: #444; }
footer { margin-top: 2rem; font-size: .85rem; color: #666; }
"""

_SCRIPT = """
const TYPE_COLORS = %(type_colors)s;
const PALETTE = %(palette)s;
const CRC_TABLE = Array.from({length: 256}, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(text) {  // zlib.crc32 of the UTF-8 bytes, as ner-html picks colours
  let c = 0xFFFFFFFF;
  for (const byte of new TextEncoder().encode(text)) c = CRC_TABLE[(c ^ byte) & 0xFF] ^ (c >>> 8);
  return (c ^ 0xFFFFFFFF) >>> 0;
}
function color(label) {
  const upper = label.toUpperCase();
  return TYPE_COLORS[upper] || PALETTE[crc32(upper) %% PALETTE.length];
}
function show(text, entities) {
  const result = document.getElementById("result");
  result.replaceChildren();
  let position = 0;
  for (const entity of entities) {
    result.append(document.createTextNode(text.slice(position, entity.start)));
    const mark = document.createElement("mark");
    mark.className = "entity";
    mark.style.background = color(entity.label);
    mark.dataset.label = entity.label;
    mark.dataset.start = entity.start;
    mark.dataset.end = entity.end;
    mark.append(document.createTextNode(text.slice(entity.start, entity.end)));
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entity.label;
    mark.append(label);
    if (typeof entity.score === "number") {
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = entity.score.toFixed(2);
      mark.append(score);
    }
    result.append(mark);
    position = entity.end;
  }
  result.append(document.createTextNode(text.slice(position)));
}
async function tag() {
  const text = document.getElementById("text").value;
  const status = document.getElementById("status");
  const headers = {"Content-Type": "application/json"};
  const key = document.getElementById("key").value;
  if (key) headers["Authorization"] = "Bearer " + key;
  status.textContent = "tagging...";
  try {
    const response = await fetch("predict", {method: "POST", headers, body: JSON.stringify({text})});
    const answer = await response.json();
    if (response.status === 401) document.getElementById("key").style.display = "block";
    if (!response.ok) {
      status.textContent = response.status + ": " + (answer.error || answer.message || JSON.stringify(answer));
      return;
    }
    show(text, answer.entities);
    status.textContent = answer.entities.length + " entities";
    document.body.dataset.done = "yes";
  } catch (error) {
    status.textContent = "failed: " + error;
  }
}
document.getElementById("tag").addEventListener("click", tag);
document.getElementById("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) tag();
});
""" % {"type_colors": json.dumps(TYPE_COLORS), "palette": json.dumps(list(PALETTE))}

_BODY = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ner-elmo: try the model</title>
<style>%(style)s</style>
</head>
<body>
<h1>ner-elmo: try the model</h1>
<textarea id="text" aria-label="text to tag">Angela Merkel met Emmanuel Macron in Berlin.</textarea>
<div class="row">
<button id="tag" type="button">Tag</button>
<input id="key" type="password" placeholder="API key" aria-label="API key">
<span id="status"></span>
</div>
<div id="result" aria-live="polite"></div>
<footer>The API: <code>POST /predict</code> with <code>{"text": "..."}</code> (or <code>{"tokens": [...]}</code>),
<code>POST /predict_batch</code> with a list, <code>GET /readyz</code>, <code>/healthz</code>, <code>/metrics</code>;
see <a href="https://github.com/ner-elmo/ner-elmo/blob/main/docs/serving.md">the service's documentation</a>.
Scores are the model's probability that the span is an entity of that type.</footer>
<script>%(script)s</script>
</body>
</html>
"""


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


PAGE = _BODY % {"style": _STYLE, "script": _SCRIPT}
#: Only the page's own style and script run; it connects to this service alone.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_digest(_STYLE)}; script-src {_digest(_SCRIPT)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
