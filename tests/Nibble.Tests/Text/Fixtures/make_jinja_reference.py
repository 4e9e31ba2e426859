# Regenerates jinja_reference.json: each snippet rendered by jinja2 3.1.6 configured like transformers
# (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson/raise_exception/strftime_now).
# Usage: python3 make_jinja_reference.py
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError
from datetime import datetime
import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_snippets import S
def raise_exception(m): raise TemplateError(m)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters['tojson']=tojson
env.globals['raise_exception']=raise_exception
env.globals['strftime_now']=lambda f: datetime.now().strftime(f)
msgs=[{"role":"system","content":"Sys!"},{"role":"user","content":"Hello! there"},{"role":"assistant","content":"Hi, how can I help?"}]
out=[]
for s in S:
    try:
        r=env.from_string(s).render(messages=msgs, tools=None, documents=None, add_generation_prompt=True, bos_token='<s>', eos_token='</s>')
        out.append({"ok":r})
    except Exception as e:
        out.append({"err":type(e).__name__+": "+str(e)})
json.dump({"templates":S,"messages":msgs,"results":out}, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jinja_reference.json'), 'w'), ensure_ascii=False)
