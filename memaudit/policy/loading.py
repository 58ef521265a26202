"""Read a policy YAML file strictly: duplicate and unknown keys are errors that name key, file and fix."""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from memaudit.errors import PolicyError
from memaudit.paths import POLICIES_DIR
from memaudit.policy.model import Policy


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: Path
    sha256: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a mapping key given twice (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _unwrap(annotation: object) -> object:
    """The model class inside Optional[...] / Annotated[...], if any."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            if argument is not type(None):
                return _unwrap(argument)
    return annotation


def _fields_at(location: tuple) -> list[str]:
    """Valid keys of the model that holds the key at ``location`` in a Policy."""
    current: object = Policy
    for part in location[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]  # ``part`` was a free-form key (a rule id)
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _describe(error: dict) -> str:
    location = tuple(error["loc"])
    key = ".".join(str(part) for part in location) or "(top level)"
    if error["type"] == "extra_forbidden":
        valid = _fields_at(location)
        close = difflib.get_close_matches(str(location[-1]), valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else (f"; valid keys here: {', '.join(valid)}" if valid else "")
        return f"unknown key '{key}'{hint}"
    message = error["msg"].removeprefix("Value error, ")
    return f"key '{key}': {message}" if location else message


def format_validation_error(path: Path | str, error: ValidationError, *, what: str = "policy") -> str:
    lines = [_describe(item) for item in error.errors()]
    return f"{path}: invalid {what}\n" + "\n".join(f"  - {line}" for line in lines)


def resolve_policy_path(name_or_path: Path | str) -> Path:
    """A path as given, or the name of a shipped policy (``ci`` -> policies/ci.yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    return POLICIES_DIR / f"{path.name}.yaml"


def load_policy(name_or_path: Path | str) -> LoadedPolicy:
    path = resolve_policy_path(name_or_path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot read policy ({error.strerror or error})") from error
    try:
        data = yaml.load(raw_bytes.decode("utf-8"), Loader=_StrictLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy is a YAML mapping at the top level")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(format_validation_error(path, error)) from error
    return LoadedPolicy(policy=policy, path=path, sha256=hashlib.sha256(raw_bytes).hexdigest())


def policy_json_schema() -> dict:
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "memaudit policy"
    return schema
