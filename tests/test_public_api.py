import torch
from torch import nn

import explr


def test_audit_is_callable_before_and_after_its_submodules_are_imported():
    import explr.audit.capture  # noqa: F401  (binds the subpackage onto explr)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 2))
    report = explr.audit(net, (torch.randn(4, 3, 8, 8),), verify=False)
    assert report.by_name("0.weight").individually_si and not report.by_name("4.weight").si
    assert explr.AuditReport is type(report)


def test_every_public_name_resolves():
    for name in explr.__all__:
        assert getattr(explr, name) is not None
    assert callable(explr.check) and callable(explr.audit) and callable(explr.convert)
