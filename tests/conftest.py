from __future__ import annotations

import torch

# Two cores: keep each test process to a predictable thread count.
torch.set_num_threads(min(2, torch.get_num_threads()))
