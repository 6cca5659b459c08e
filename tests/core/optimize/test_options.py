"""core.optimize.options: the coarse-to-fine schedule."""
from ganstyle.core.optimize import OptimizeOptions, plan_scales


def test_plan_scales():
    plan = plan_scales(300, 400, OptimizeOptions(long_side=1024, start_side=256, steps=200, min_steps=20))
    assert [(s.height, s.width, s.steps) for s in plan] == [(192, 256, 200), (384, 512, 100), (768, 1024, 50)]
    plan = plan_scales(300, 400, OptimizeOptions(long_side=1000, start_side=256, steps=200))
    assert [(s.height, s.width) for s in plan] == [(375, 500), (750, 1000)]   # coarsest >= start_side
    single = plan_scales(300, 400, OptimizeOptions(long_side=0, start_side=512, steps=30))
    assert [(s.height, s.width, s.steps) for s in single] == [(300, 400, 30)]
    floor = plan_scales(64, 64, OptimizeOptions(long_side=512, start_side=64, steps=40, min_steps=15))
    assert [s.steps for s in floor] == [40, 20, 15, 15]
    few = plan_scales(64, 64, OptimizeOptions(long_side=256, start_side=64, steps=6, min_steps=15))
    assert [s.steps for s in few] == [6, 6, 6]          # min_steps never exceeds steps
