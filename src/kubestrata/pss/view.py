"""A pod's metadata and spec, type-checked the way the API server's decoder would, for the checks.

PSA works on typed Go structs, so a field of the wrong type never reaches a check: the request
fails to decode. We check the type of every field a check reads and raise InputError naming the
first bad field, so a malformed pod is reported as invalid, never as allowed and never as a crash.
Fields no check reads are left alone.
"""

from __future__ import annotations

from typing import Any

from kubestrata.errors import InputError

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

_EMPTY: dict[str, Any] = {}


class _Obj:
    """Schema of a JSON object: field name -> expected Python type or nested schema."""

    __slots__ = ("fields",)

    def __init__(self, **fields: Any) -> None:
        self.fields = fields


class _List:
    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item


class _Map:
    """map[string]string."""


_TYPE_NAMES = {bool: "boolean", int: "integer", str: "string", dict: "object", list: "array"}


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def _check(value: Any, schema: Any, path: str) -> None:
    if value is None:
        return
    if schema is bool or schema is str or schema is int:
        # type(...) is, not isinstance: True is an int to Python but not to the API server
        if type(value) is not schema:
            raise InputError(f"expected {_TYPE_NAMES[schema]}, got {_type_name(value)}", field=path)
        return
    if type(schema) is _Obj:
        if not isinstance(value, dict):
            raise InputError(f"expected object, got {_type_name(value)}", field=path)
        fields = schema.fields
        for k, v in value.items():
            sub = fields.get(k)
            if sub is not None and v is not None:
                _check(v, sub, f"{path}.{k}")
        return
    if type(schema) is _List:
        if not isinstance(value, list):
            raise InputError(f"expected array, got {_type_name(value)}", field=path)
        item = schema.item
        for i, v in enumerate(value):
            if v is None:
                continue
            _check(v, item, f"{path}[{i}]")
        return
    if type(schema) is _Map:
        if not isinstance(value, dict):
            raise InputError(f"expected object, got {_type_name(value)}", field=path)
        for k, v in value.items():
            if not isinstance(v, str):
                raise InputError(f"expected string, got {_type_name(v)}", field=f"{path}[{k}]")
        return
    raise AssertionError(schema)  # pragma: no cover


def _valid(value: Any, schema: Any, fast: Any, path: str) -> None:
    if value is None:
        return
    if not fast(value):
        _check(value, schema, path)
        raise AssertionError(f"validators disagree at {path}")  # pragma: no cover


_TYPED = _Obj(type=str)
_SELINUX = _Obj(type=str, user=str, role=str, level=str)
_WINDOWS = _Obj(hostProcess=bool)
_HOSTED = _Obj(host=str)
_HANDLER = _Obj(httpGet=_HOSTED, tcpSocket=_HOSTED)

POD_SECURITY_CONTEXT = _Obj(
    runAsNonRoot=bool,
    runAsUser=int,
    seccompProfile=_TYPED,
    seLinuxOptions=_SELINUX,
    appArmorProfile=_TYPED,
    sysctls=_List(_Obj(name=str)),
    windowsOptions=_WINDOWS,
)
CONTAINER_SECURITY_CONTEXT = _Obj(
    privileged=bool,
    allowPrivilegeEscalation=bool,
    capabilities=_Obj(add=_List(str), drop=_List(str)),
    procMount=str,
    runAsNonRoot=bool,
    runAsUser=int,
    seccompProfile=_TYPED,
    seLinuxOptions=_SELINUX,
    appArmorProfile=_TYPED,
    windowsOptions=_WINDOWS,
)
CONTAINER = _Obj(
    name=str,
    securityContext=CONTAINER_SECURITY_CONTEXT,
    ports=_List(_Obj(hostPort=int, containerPort=int)),
    livenessProbe=_HANDLER,
    readinessProbe=_HANDLER,
    startupProbe=_HANDLER,
    lifecycle=_Obj(postStart=_HANDLER, preStop=_HANDLER),
)
# the inline volume sources of core/v1 VolumeSource; each is an object when set
VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
VOLUME = _Obj(name=str, **{s: _Obj() for s in VOLUME_SOURCES})
POD_SPEC_FIELDS = _Obj(
    hostNetwork=bool,
    hostPID=bool,
    hostIPC=bool,
    hostUsers=bool,
    runtimeClassName=str,
    os=_Obj(name=str),
    securityContext=POD_SECURITY_CONTEXT,
    volumes=_List(VOLUME),
)


def _codegen(schema: Any, name: str) -> Any:
    """Generate one flat Python function that tells whether a value matches the schema: no paths,
    no messages. The slow _check runs only when it fails, to name the field, so valid pods (nearly
    all of them) pay for type checks alone. Flat, without a call per nested object: validating the
    dozens of fields of a pod is most of the cost of evaluating it, and nested calls dominated that.
    """
    lines = [f"def {name}(v0):"]
    counter = [0]

    def emit(sch: Any, var: str, ind: str) -> None:
        if sch is bool or sch is str or sch is int:
            lines.append(f"{ind}if type({var}) is not {sch.__name__}: return False")
            return
        if type(sch) is _Map:
            lines.append(f"{ind}if type({var}) is not dict: return False")
            lines.append(f"{ind}for x in {var}.values():")
            lines.append(f"{ind}    if type(x) is not str: return False")
            return
        if type(sch) is _List:
            counter[0] += 1
            item = f"v{counter[0]}"
            lines.append(f"{ind}if type({var}) is not list: return False")
            lines.append(f"{ind}for {item} in {var}:")
            lines.append(f"{ind}    if {item} is not None:")
            emit(sch.item, item, ind + "        ")
            return
        lines.append(f"{ind}if type({var}) is not dict: return False")
        empties = [k for k, sub in sch.fields.items() if type(sub) is _Obj and not sub.fields]
        if len(empties) > 8:  # the volume sources: any set one must be an object
            lines.append(f"{ind}for k, x in {var}.items():")
            lines.append(
                f"{ind}    if x is not None and type(x) is not dict and k in _EMPTY_OBJ_KEYS: return False"
            )
        else:
            empties = []
        for k, sub in sch.fields.items():
            if k in empties:
                continue
            counter[0] += 1
            child = f"v{counter[0]}"
            lines.append(f"{ind}{child} = {var}.get({k!r})")
            lines.append(f"{ind}if {child} is not None:")
            emit(sub, child, ind + "    ")

    emit(schema, "v0", "    ")
    lines.append("    return True")
    scope: dict[str, Any] = {"_EMPTY_OBJ_KEYS": frozenset(VOLUME_SOURCES)}
    exec(compile("\n".join(lines), f"<pss-validator {name}>", "exec"), scope)  # noqa: S102
    return scope[name]


_FAST_POD_SPEC = _codegen(POD_SPEC_FIELDS, "valid_pod_spec")
_FAST_CONTAINER = _codegen(CONTAINER, "valid_container")
_FAST_ANNOTATIONS = _codegen(_Map(), "valid_annotations")


class PodView:
    """What the checks read: annotations, spec, pod securityContext and the containers in PSA's
    visit order (init, regular, ephemeral) as (name, securityContext or {}, container, path)."""

    __slots__ = ("annotations", "spec", "psc", "containers", "spec_path", "meta_path", "windows", "template")

    def __init__(
        self,
        annotations: dict[str, str],
        spec: dict[str, Any],
        psc: dict[str, Any],
        containers: list[tuple[str, dict[str, Any], dict[str, Any], str]],
        spec_path: str,
        meta_path: str,
    ) -> None:
        self.annotations = annotations
        self.spec = spec
        self.psc = psc
        self.containers = containers
        self.spec_path = spec_path
        self.meta_path = meta_path
        self.template = spec_path != "spec"  # a controller's pod template, not a pod
        os_ = spec.get("os")
        # spec.os.name=windows: exempt from the Linux-only restricted checks from v1.25
        self.windows = os_ is not None and os_.get("name") == "windows"

    @property
    def host_users_false(self) -> bool:
        """helpers.go relaxPolicyForUserNamespacePod: hostUsers explicitly false."""
        return self.spec.get("hostUsers") is False

    @property
    def runtime_class(self) -> str:
        return self.spec.get("runtimeClassName") or ""


def build_view(
    metadata: Any, spec: Any, spec_path: str = "spec", meta_path: str | None = None, *, typed: bool = False
) -> PodView:
    """Type-check and index a pod's metadata and spec; InputError names the first bad field.
    ``typed``: the fields' types were checked already (a pod changed only by fix patches, whose
    values have the types the checks read), so only the index is built."""
    if meta_path is None:
        meta_path = spec_path[: -len("spec")] + "metadata" if spec_path.endswith("spec") else "metadata"
    if metadata is None:
        metadata = _EMPTY
    elif not isinstance(metadata, dict):
        raise InputError(f"expected object, got {_type_name(metadata)}", field=meta_path)
    annotations = metadata.get("annotations")
    if annotations is None:
        annotations = _EMPTY
    elif not typed:
        _valid(annotations, _Map(), _FAST_ANNOTATIONS, f"{meta_path}.annotations")
    if not isinstance(spec, dict):
        raise InputError(f"expected object, got {_type_name(spec)}", field=spec_path)
    if not typed:
        _valid(spec, POD_SPEC_FIELDS, _FAST_POD_SPEC, spec_path)
    psc = spec.get("securityContext") or _EMPTY
    containers: list[tuple[str, dict[str, Any], dict[str, Any], str]] = []
    regular = spec.get("containers")
    if not isinstance(regular, list) or not regular:
        what = (
            "missing"
            if regular is None
            else f"{_type_name(regular)}"
            if not isinstance(regular, list)
            else "empty"
        )
        raise InputError(f"at least one container is required (got {what})", field=f"{spec_path}.containers")
    for list_field in CONTAINER_LISTS:
        items = spec.get(list_field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InputError(f"expected array, got {_type_name(items)}", field=f"{spec_path}.{list_field}")
        for i, c in enumerate(items):
            path = f"{spec_path}.{list_field}[{i}]"
            if c is None:
                raise InputError("expected object, got null", field=path)
            if not typed and not _FAST_CONTAINER(c):
                _valid(c, CONTAINER, _FAST_CONTAINER, path)
            containers.append((c.get("name") or "", c.get("securityContext") or _EMPTY, c, path))
    return PodView(annotations, spec, psc, containers, spec_path, meta_path)
