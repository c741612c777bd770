"""Graph capture: torch.fx tracing that carries concrete values (real or meta tensors) alongside proxies.

Every node is executed as it is recorded, its result kept in ``node.meta["val"]`` (as
torch/fx/passes/shape_prop.py does), so Python control flow on shapes and attributes
(``x.dim()``, ``x.shape[1] != self.c``, ``len(x)``, loops) resolves concretely: shape queries
return plain Python values and never enter the graph. ``bool()`` on a proxy can then only
come from tensor *data*: that is data-dependent control flow, and the innermost submodule
that does it is rolled back and recorded as one opaque ``call_module`` node instead
(`OpaqueCall`). Normalization modules are traced through to their functional ops
(F.batch_norm carries its concrete ``training`` flag); parametrizations are traced through
too, so w/||w|| is seen.

Functions registered with ``torch.fx.wrap`` (torchvision's ``stochastic_depth`` and
``shifted_window_attention``, a user's own helpers) are seen through the same way: their body
is traced inline, and only a body that branches on tensor data falls back to one opaque
``call_function`` node (its tensor inputs go to degree 0, the parameters it read are opaque).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import operator
import os
import sys
from dataclasses import dataclass, field
from types import FrameType

import torch
from torch import fx
from torch.fx import _symbolic_trace as _st
from torch.fx.node import map_aggregate, map_arg
from torch.overrides import TorchFunctionMode

import explr
from explr.audit import registry
from explr.audit_report import OpaquePart
from explr.errors import TraceError, quote_error

# Tensor methods whose results are shape/metadata: answered concretely, never recorded.
CONCRETE_METHODS = frozenset({
    "size", "dim", "ndimension", "numel", "nelement", "element_size", "stride", "is_contiguous",
    "is_floating_point", "is_complex", "get_device", "storage_offset",
})


# Functions of tensor metadata only: answered concretely too (torch.numel(x) is as static as x.numel()).
CONCRETE_FUNCTIONS = frozenset({torch.numel, torch.is_floating_point, torch.is_complex, torch.result_type})


_NOT_USER_CODE = tuple(os.path.dirname(inspect.getfile(m)) + os.sep for m in (torch, contextlib, explr))


def user_frame() -> str:
    """'model.py:42 `out = a + b`': the innermost caller outside torch, explr and the standard
    library (cheaper than fx's record_stack_traces, which formats the whole stack per node)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_NOT_USER_CODE):
        frame = frame.f_back
    if frame is None:
        return ""
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" + (f" `{code}`" if code else "")


class DataDependentControlFlow(RuntimeError):
    """bool()/len()/iteration on a value that depends on tensor data."""


class _Fatal(RuntimeError):
    """A failure that must not be turned into an opaque module (it would hide a real problem)."""


# node.meta key marking a wrapped function kept as one opaque call (its body is data-dependent);
# the value is the function's qualified name
OPAQUE_FUNCTION = registry.OPAQUE_FUNCTION


@dataclass(frozen=True, slots=True)
class OpaqueCall:
    module: str  # the opaque module, or for a wrapped function the module it was called in
    why: str
    function: str = ""  # the wrapped function's qualified name; "" for a module
    params: tuple[str, ...] = ()  # a function's parameters (a module's are all of its own)


@dataclass
class Capture:
    graph: fx.Graph
    root: torch.nn.Module  # the (copied) module the graph's targets refer to
    opaque: list[OpaqueCall] = field(default_factory=list)
    root_opaque: str | None = None  # why the root forward itself could not be traced

    def opaque_parts(self) -> list[OpaquePart]:
        """The parts the capture could not see into, each with the parameters it may use, named
        as in root.named_parameters() (a submodule shared under two names has one name there)."""
        if self.root_opaque is not None:
            return [OpaquePart("", self.root_opaque, tuple(n for n, _ in self.root.named_parameters()))]
        names = {id(p): n for n, p in self.root.named_parameters()}
        parts = []
        for o in self.opaque:
            if o.function:
                parts.append(OpaquePart(o.module, f"{o.function}(): {o.why}", o.params))
                continue
            sub = self.root.get_submodule(o.module)
            parts.append(OpaquePart(o.module, o.why, tuple(dict.fromkeys(names[id(p)] for p in sub.parameters()))))
        return parts


class ConcreteProxy(fx.Proxy):
    """A proxy that answers metadata questions from its node's concrete value."""

    def __getattr__(self, k: str):
        val = self.node.meta.get("val")
        if isinstance(val, torch.Tensor) and k == "type":
            return lambda *a, **kw: val.type() if not a and not kw else fx.proxy.Attribute(self, k)(*a, **kw)
        if isinstance(val, torch.Tensor) and not k.startswith("__"):
            attr = getattr(val, k, None)
            if callable(attr):
                return attr if k in CONCRETE_METHODS else fx.proxy.Attribute(self, k)
            if attr is not None and not isinstance(attr, torch.Tensor):
                return attr  # shape, ndim, dtype, device, is_cuda, requires_grad, ...
        return fx.proxy.Attribute(self, k)

    def __len__(self) -> int:
        return len(self.node.meta["val"])

    def __bool__(self) -> bool:
        raise DataDependentControlFlow(f"data-dependent control flow on {self.node.format_node()}")

    def __index__(self) -> int:
        raise DataDependentControlFlow(f"a tensor value used as an index ({self.node.name})")

    __int__ = __float__ = __index__

    def __setitem__(self, key, value) -> None:  # x[a:b] = v: recorded like any in-place op
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})


def _without_tracing_patches():
    """Run real modules while fx has Module.__call__/__getattr__ patched."""
    stack = contextlib.ExitStack()
    for name, orig in (("__call__", _st._orig_module_call), ("__getattr__", _st._orig_module_getattr)):
        current = torch.nn.Module.__dict__[name]
        setattr(torch.nn.Module, name, orig)
        stack.callback(setattr, torch.nn.Module, name, current)
    return stack


def fetch_attr(root: torch.nn.Module, target: str):
    obj = root
    for atom in target.split("."):
        obj = _st._orig_module_getattr(obj, atom) if isinstance(obj, torch.nn.Module) and \
            atom not in obj.__dict__ else getattr(obj, atom)
    return obj


class ConcreteTracer(fx.Tracer):
    def __init__(self, model: torch.nn.Module, example_inputs: tuple):
        # torch annotates autowrap_modules as tuple[ModuleType], a one-element tuple, though any length works
        super().__init__(autowrap_modules=(), autowrap_functions=())  # type: ignore[arg-type]
        self.example_inputs = example_inputs
        self.opaque: list[OpaqueCall] = []
        self._opaque_modules: set[int] = set()
        self._param_proxies: dict[str, fx.Proxy] = {}  # our own cache: a roll-back must drop entries
        self._param_names = {id(p): n for n, p in model.named_parameters()}  # O(1), not fx's O(P) scan
        self._reads: list[set[str]] = []  # parameters read inside each wrapped function being traced

    # -- what is a leaf: only modules that turned out opaque
    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        return id(m) in self._opaque_modules

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return ConcreteProxy(node, self)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if isinstance(attr_val, torch.nn.Parameter):
            name = self._param_names.get(id(attr_val))
            if name is not None:
                for reads in self._reads:
                    reads.add(name)
                if name not in self._param_proxies:
                    self._param_proxies[name] = self.create_proxy("get_attr", name, (), {})
                return self._param_proxies[name]
        return attr_val

    def iter(self, obj: fx.Proxy):  # obj[i] as Proxy.__getitem__ records it (fx adds that method untyped)
        return (self.create_proxy("call_function", operator.getitem, (obj, i), {})
                for i in range(len(obj.node.meta["val"])))

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        names = [f"input_{i}" for i in range(len(self.example_inputs))]
        placeholders = [self.create_proxy("placeholder", n, (), {}) for n in names]
        return root_fn, ([self.root] if is_module else []) + placeholders

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "call_function" and target in CONCRETE_FUNCTIONS:
            value = proxy.node.meta["val"]
            self.graph.erase_node(proxy.node)
            return value
        return proxy

    # -- every node gets its concrete value
    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta["source"] = user_frame()  # a failing rule names this line (explr.audit.degrees.place)
        if kind != "output":
            node.meta["val"] = self._run(node)
        return node

    def _run(self, node: fx.Node):
        target = node.target
        args, kwargs = map_arg((node.args, node.kwargs), lambda n: n.meta["val"])
        if callable(target):  # call_function; every other op's target is a name
            with _without_tracing_patches():
                return target(*args, **kwargs)
        if node.op == "placeholder":
            return self.example_inputs[int(target.rsplit("_", 1)[1])]
        if node.op == "get_attr":
            return fetch_attr(self.root, target)
        with _without_tracing_patches():
            if node.op == "call_method":
                return getattr(args[0], target)(*args[1:], **kwargs)
            try:
                with ParameterReads(self._param_names) as reads:
                    out = fetch_attr(self.root, target)(*args, **kwargs)
                node.meta["reads"] = reads.names
                return out
            except Exception as exc:  # an opaque module that cannot run on these values
                raise _Fatal(f"{node.target} cannot run on the example inputs: {quote_error(exc)}") from exc

    def _unwind(self, last_node, depth: int) -> None:
        """Undo a failed trace of a call: the module scopes it entered and the nodes it recorded."""
        while len(self.module_stack) > depth:
            self.module_stack.popitem(last=True)
        self._roll_back_to(last_node)

    # -- per-submodule fallback: a module that cannot be traced becomes one opaque node
    def call_module(self, m, forward, args, kwargs):
        if id(m) in self._opaque_modules:
            return super().call_module(m, forward, args, kwargs)
        last_node, depth = self.graph._root.prev, len(self.module_stack)
        try:
            return super().call_module(m, forward, args, kwargs)
        except _Fatal:
            raise
        except Exception as exc:
            self._unwind(last_node, depth)
            name = self.path_of_module(m)
            self.opaque.append(OpaqueCall(name, _why(exc)))
            self._opaque_modules.add(id(m))
            return super().call_module(m, forward, args, kwargs)

    # -- torch.fx.wrap'd functions: trace the body inline; a data-dependent body stays one opaque call
    def call_wrapped(self, fn, args: tuple, kwargs: dict):
        last_node, depth = self.graph._root.prev, len(self.module_stack)
        self._reads.append(set())
        try:
            return fn(*args, **kwargs)
        except _Fatal:
            raise
        except Exception as exc:
            self._unwind(last_node, depth)
            return self._opaque_function(fn, args, kwargs, exc)
        finally:
            read = self._reads.pop()
            if self._reads:  # an enclosing wrapped function read them too
                self._reads[-1] |= read

    def _opaque_function(self, fn, args: tuple, kwargs: dict, exc: Exception):
        proxy = self.create_proxy("call_function", fn, args, kwargs)
        name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}"
        proxy.node.meta[OPAQUE_FUNCTION] = name
        read = set(self._reads[-1])  # what the body read before it stopped, and every module it was handed
        map_aggregate((args, kwargs), lambda a: read.update(
            self._param_names[id(p)] for p in a.parameters()) if isinstance(a, torch.nn.Module) else None)
        stack = list(self.module_stack.values())
        module = stack[-1][0] if stack else ""
        params = tuple(n for n in self._param_names.values() if n in read)  # named_parameters order
        self.opaque.append(OpaqueCall(module, _why(exc), name, params))
        return proxy

    def _roll_back_to(self, last_node: fx.Node) -> None:
        for node in reversed(list(self.graph.nodes)):
            if node is last_node:
                break
            if node.op == "get_attr":
                self._param_proxies.pop(node.target, None)
            self.graph.erase_node(node)


class ParameterReads(TorchFunctionMode):
    """Names of the model's parameters that torch ops receive while active: an opaque module may
    read a weight it does not own (through a plain Python reference)."""

    def __init__(self, names: dict[int, str]):
        super().__init__()
        self._names, self.names = names, set[str]()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for t in tensor_leaves((args, kwargs or {})):
            name = self._names.get(id(t))
            if name is not None:
                self.names.add(name)
        return func(*args, **(kwargs or {}))


def _why(exc: BaseException) -> str:
    if isinstance(exc, DataDependentControlFlow):
        return "data-dependent control flow (a Python branch on tensor values)"
    return f"cannot be traced ({quote_error(exc)})"


def _see_through(orig_fn):
    """Stands in for fx's wrapper of a torch.fx.wrap'd function: our tracer traces the body."""
    @functools.wraps(orig_fn)
    def wrapped(*args, **kwargs):
        proxy = _st._find_proxy(args, kwargs)
        if proxy is None:
            return orig_fn(*args, **kwargs)
        if isinstance(proxy.tracer, ConcreteTracer) and inspect.isfunction(orig_fn):
            return proxy.tracer.call_wrapped(orig_fn, args, kwargs)
        return _FX_WRAPPER(orig_fn)(*args, **kwargs)  # a wrapped builtin: fx's own call node
    return wrapped


_FX_WRAPPER = _st._create_wrapped_func


@contextlib.contextmanager
def _seeing_through_wrapped_functions():
    """fx patches every torch.fx.wrap'd function with `_create_wrapped_func(fn)` when a trace
    starts; for the duration of ours that factory is `_see_through`."""
    _st._create_wrapped_func = _see_through
    try:
        yield
    finally:
        _st._create_wrapped_func = _FX_WRAPPER


def capture(model: torch.nn.Module, example_inputs: tuple) -> Capture:
    """Trace `model` (already a private copy, in train mode) on `example_inputs`."""
    tracer = ConcreteTracer(model, tuple(example_inputs))
    try:
        with torch.no_grad(), root_hooks_traced(model), _seeing_through_wrapped_functions():
            graph = tracer.trace(model)
    except _Fatal as exc:
        raise TraceError(f"capture failed: {exc}") from exc
    except Exception as exc:  # the root forward itself: the whole model is opaque
        graph = fx.Graph()
        return Capture(graph, model, tracer.opaque, root_opaque=_why(exc))
    return Capture(graph, model, tracer.opaque)


def tensor_leaves(value) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_aggregate(value, lambda v: out.append(v) if isinstance(v, torch.Tensor) else None)
    return out


@contextlib.contextmanager
def root_hooks_traced(model: torch.nn.Module):
    """fx traces `type(root).forward`, not `root.__call__`, so hooks on the root would be skipped:
    while tracing, the (private) model's class is a subclass whose forward runs them around it."""
    if not (model._forward_pre_hooks or model._forward_hooks):
        yield
        return
    cls = type(model)

    def forward(self, *args, **kwargs):
        for key, hook in list(self._forward_pre_hooks.items()):
            if key in self._forward_pre_hooks_with_kwargs:
                args, kwargs = hook(self, args, kwargs) or (args, kwargs)
            else:
                new = hook(self, args)
                args = args if new is None else (new if isinstance(new, tuple) else (new,))
        out = cls.forward(self, *args, **kwargs)
        for key, hook in list(self._forward_hooks.items()):
            new = hook(self, args, kwargs, out) if key in self._forward_hooks_with_kwargs else hook(self, args, out)
            out = out if new is None else new
        return out

    model.__class__ = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})
    try:
        yield
    finally:
        model.__class__ = cls
