"""Mapping files: how a site's export becomes CDM columns, labels, units and visits.

```yaml
columns: {PatientID: person_id, Visit: visit, PANSS_P1: panss_p1}
visits: {V0: baseline, V2: week6}
recode: {sex: {"1": M, "2": F}}
units: {weight_kg: {from: lb, factor: 0.45359237, offset: 0}}
```
Renames apply first, then visit and category recodes (to the renamed columns), then unit
conversions (value × factor + offset).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import ErrorCode, FedpsyError


class UnitConversion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_unit: str = Field(alias="from")
    factor: float = 1.0
    offset: float = 0.0


class Mapping(BaseModel):
    """A validated mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    visits: dict[str, str] = {}
    recode: dict[str, dict[str, str]] = {}
    units: dict[str, UnitConversion] = {}

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The chunk with columns renamed and values recoded/converted (strings in, out)."""
        out = frame.rename(columns=self.columns) if self.columns else frame
        if self.visits and "visit" in out.columns:
            out = out.assign(visit=out["visit"].map(lambda v: self.visits.get(v, v)))
        for column, codes in self.recode.items():
            if column in out.columns:
                out[column] = out[column].map(lambda v, c=codes: c.get(v, v))
        for column, conv in self.units.items():
            if column in out.columns:
                out[column] = _convert(out[column], conv)
        return out


def _convert(values: pd.Series, conv: UnitConversion) -> pd.Series:
    numbers = pd.to_numeric(values.where(values != ""), errors="coerce")
    converted = numbers * conv.factor + conv.offset
    # cells that were not numbers stay as they were, so validation names them
    text = converted.map(lambda v: "" if pd.isna(v) else repr(float(v)))
    return text.where(numbers.notna(), values)


def load_mapping(path: Path | None) -> Mapping:
    """Read a mapping file; errors name the file and the offending key."""
    if path is None:
        return Mapping()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FedpsyError(f"{path}: {exc}", code=ErrorCode.MAPPING_INVALID) from exc
    if not isinstance(data, dict):
        raise FedpsyError(
            f"{path}: expected a mapping with keys columns, visits, recode, units",
            code=ErrorCode.MAPPING_INVALID,
        )
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FedpsyError(
            f"{path}: {where}: {first['msg']}", code=ErrorCode.MAPPING_INVALID
        ) from exc
