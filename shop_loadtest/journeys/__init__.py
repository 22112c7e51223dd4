"""Journeys as plain objects: templated request steps, captures, checks, think times and data.

Nothing here does I/O on the network or imports locust, so the same code validates a scenario
in the CLI process and runs it inside Locust (the runtime only adds the HTTP call). Templates
run in a sandboxed Jinja2 environment with `faker`, `random_int`, `random_choice`,
`random_float`, `uuid`, `env`, the scenario's `vars` and the target's `host` (or `base_url`);
a value that is exactly one `{{ expression }}` keeps its Python type, so
`product_id: "{{ product_id }}"` sends a number when the capture was a number. A string
without `{{` is never rendered: constants are free.

One module per idea, re-exported here (generated locustfiles import from this package):
`templates` (the sandboxed environment, secrets, compiled values), `captures` (responses,
captures and checks), `checks` (header, URL, redirect chain and JSON type checks), `flow`
(`for:` loops and `retry:`), `data` (CSV data pools), `steps` (steps, `set:` assignments, journeys,
compiled requests, and the pause after a failure), `exports` (rows of `export:` steps) and
`redirects` (where a redirect's next
hop goes).
The scenario's checks of its journeys are in `shop_loadtest.scenario.journey_checks`,
and scenario steps become these objects in `shop_loadtest.generate.blocks`.

    >>> env = make_environment(seed=1)
    >>> compile_value(env, {"id": "{{ pid }}", "q": 1})({"pid": 7})
    {'id': 7, 'q': 1}
    >>> view = ResponseView(200, text='<input name="csrf_token" value="t0k">')
    >>> Capture.parse("csrf", "form:csrf_token").extract(view)
    't0k'
"""

from shop_loadtest.journeys.captures import CAPTURE_KINDS, Capture, CompiledCheck, ResponseView
from shop_loadtest.journeys.checks import JSON_TYPES, ResponseCheck
from shop_loadtest.journeys.data import DataExhausted, DataPool, DataSource, Row, read_csv
from shop_loadtest.journeys.exports import (
    EXPORT_FILE_RE,
    EXPORTS_FOLDER,
    MAX_EXPORT_VALUES,
    ExportStep,
    export_columns,
    export_row,
)
from shop_loadtest.journeys.flow import (
    DEFAULT_RETRY_THINK_S,
    MAX_FOR_ITEMS,
    MAX_RETRY,
    CompiledFor,
    ForStep,
    LoopError,
    Retry,
)
from shop_loadtest.journeys.redirects import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    Hop,
    RedirectError,
    hop_name,
    next_hop,
    with_scheme,
)
from shop_loadtest.journeys.steps import (
    DEFAULT_TIMEOUT_S,
    FORM_CONTENT_TYPE,
    MAX_REPEAT,
    Block,
    CompiledIf,
    CompiledRepeat,
    CompiledRequest,
    CompiledSet,
    IfStep,
    Journey,
    RepeatStep,
    RequestStep,
    SetStep,
    Settings,
    ThinkStep,
    compile_request,
    compile_set,
    compile_test,
    expand,
    flat_steps,
    pause_after_failure,
    step_template_texts,
)
from shop_loadtest.journeys.templates import (
    GLOBAL_NAMES,
    Loc,
    MissingSecret,
    Renderer,
    SecretEnv,
    TemplateError,
    compile_value,
    constant,
    is_template,
    make_environment,
    names_used,
    target_names,
)

__all__ = [
    "CAPTURE_KINDS",
    "DEFAULT_RETRY_THINK_S",
    "DEFAULT_TIMEOUT_S",
    "EXPORTS_FOLDER",
    "EXPORT_FILE_RE",
    "FORM_CONTENT_TYPE",
    "GLOBAL_NAMES",
    "JSON_TYPES",
    "MAX_EXPORT_VALUES",
    "MAX_FOR_ITEMS",
    "MAX_REDIRECTS",
    "MAX_REPEAT",
    "MAX_RETRY",
    "REDIRECT_STATUSES",
    "Block",
    "Capture",
    "CompiledCheck",
    "CompiledFor",
    "CompiledIf",
    "CompiledRepeat",
    "CompiledRequest",
    "CompiledSet",
    "DataExhausted",
    "DataPool",
    "DataSource",
    "ExportStep",
    "ForStep",
    "Hop",
    "IfStep",
    "Journey",
    "Loc",
    "LoopError",
    "MissingSecret",
    "RedirectError",
    "Renderer",
    "RepeatStep",
    "RequestStep",
    "ResponseCheck",
    "ResponseView",
    "Retry",
    "Row",
    "SecretEnv",
    "SetStep",
    "Settings",
    "TemplateError",
    "ThinkStep",
    "compile_request",
    "compile_set",
    "compile_test",
    "compile_value",
    "constant",
    "expand",
    "export_columns",
    "export_row",
    "flat_steps",
    "hop_name",
    "is_template",
    "make_environment",
    "names_used",
    "next_hop",
    "with_scheme",
    "pause_after_failure",
    "read_csv",
    "step_template_texts",
    "target_names",
]
