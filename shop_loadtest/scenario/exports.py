"""The `export:` step of the journey language: which values go to which export file."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from shop_loadtest.errors import shown
from shop_loadtest.journeys.exports import EXPORT_FILE_RE, FIRST_COLUMNS, MAX_EXPORT_VALUES
from shop_loadtest.scenario.base import IDENT_RE, Model


class ExportSpec(Model):
    """`export: {file: orders.csv, values: [order_id, email]}`: a row of the run folder's
    `exports/orders.csv` (journey, time, then the values) each time the step runs."""

    file: str = Field(description="a CSV file name (letters, digits, _ . -, ending .csv), "
                                  "written under the run folder's exports/")
    values: list[str] = Field(min_length=1, max_length=MAX_EXPORT_VALUES,
                              description="the variables (captures, set:, variables, data "
                                          "rows) whose values make the row, in column order")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if not EXPORT_FILE_RE.match(value):
            raise ValueError(f"a file name such as orders.csv (letters, digits, _ . -, ending "
                             f".csv, no folders), got {shown(value)}")
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, value: list[str]) -> list[str]:
        for name in value:
            if not IDENT_RE.match(name):
                raise ValueError(f"values are variable names (letters, digits, _), without "
                                 f"{{{{ }}}}; got {shown(name)}")
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"each value once; repeated: {', '.join(dupes)}")
        if set(FIRST_COLUMNS) & set(value):
            raise ValueError("journey and time are the first two columns already; name the "
                             "variable otherwise")
        return value
