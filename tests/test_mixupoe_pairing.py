"""MixupOE pairing: every outlier of the step is mixed with ID image j mod B (Appendix H.2's 256 ID
images and 512 outliers); equal batches (Appendix D.1's 32 and 32) train as the one-to-one reference."""

import torch
import torch.nn.functional as F
from torch import nn

from fgood_bench.paper import FINE_GRAINED, INET
from fgood_bench.training.methods import Hyper, method_loss, mix, mixed_target, mixup_pairs, outliers_per_step, soft_cross_entropy


class Recording(nn.Module):
    """A linear classifier that keeps every batch it is given."""

    def __init__(self, features: int = 12, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(features, classes)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.fc(x.flatten(1))


def test_inet_recipe_draws_512_outliers_per_step_for_mixupoe():
    assert (INET.batch_size, INET.outlier_batch_size) == (256, 512)  # H.2
    for hyper in (Hyper(), Hyper(alpha=0.4, beta=5.0, coarse=True)):  # D.3's and H.2's MixupOE values
        assert outliers_per_step("mixupoe", hyper, INET.batch_size, INET.outlier_batch_size) == 512
    assert outliers_per_step("mixupoe", Hyper(), FINE_GRAINED.batch_size, FINE_GRAINED.outlier_batch_size) == 32
    assert mixup_pairs(256, 512).tolist() == [j % 256 for j in range(512)]
    assert mixup_pairs(4, 2).tolist() == [0, 1]  # fewer outliers: the first ID images


def test_every_outlier_is_mixed_with_id_image_j_mod_b():
    net = Recording()
    x_id, x_out = torch.randn(4, 3, 2, 2), torch.randn(8, 3, 2, 2)
    y = torch.tensor([0, 1, 2, 1])
    torch.manual_seed(3)
    loss, logs = method_loss("mixupoe", net, x_id, y, x_out, 3, Hyper(beta=5.0), torch.Generator())
    lam = logs["lam"]
    assert [len(x) for x in net.inputs] == [4, 8]  # the ID batch, then one mixed sample per outlier
    mixed = net.inputs[1]
    for j in range(8):
        assert torch.allclose(mixed[j], lam * x_id[j % 4] + (1 - lam) * x_out[j], atol=1e-6)
    with torch.no_grad():
        labels = torch.tensor([y[j % 4].item() for j in range(8)])
        expected = F.cross_entropy(net.fc(x_id.flatten(1)), y) + 5.0 * soft_cross_entropy(
            net.fc(mixed.flatten(1)), mixed_target(labels, lam, 3))
    assert torch.allclose(loss, expected, atol=1e-6)


def test_cutmix_pastes_every_outlier_into_its_id_image():
    net = Recording(features=3 * 8 * 8)
    x_id, x_out = torch.randn(2, 3, 8, 8), torch.randn(6, 3, 8, 8)
    torch.manual_seed(4)
    method_loss("mixupoe", net, x_id, torch.tensor([0, 2]), x_out, 3, Hyper(mix_op="cutmix"), torch.Generator().manual_seed(1))
    mixed = net.inputs[1]
    assert len(mixed) == 6
    for j in range(6):
        from_outlier = mixed[j] == x_out[j]
        assert torch.equal(torch.where(from_outlier, x_out[j], x_id[j % 2]), mixed[j])


def _old_mixupoe_loss(net, x_id, y, x_out, num_classes, hyper, generator):
    """The former computation (ID image i with outlier i, min of both batches), for D.1's equal batches."""
    ce = F.cross_entropy(net(x_id), y)
    lam = float(torch.distributions.Beta(hyper.alpha, hyper.alpha).sample().item())
    n = min(len(x_id), len(x_out))
    mixed, share = mix(x_id[:n], x_out[:n], lam, hyper.mix_op, generator)
    return ce + hyper.beta * soft_cross_entropy(net(mixed), mixed_target(y[:n], share, num_classes))


def test_equal_batches_train_exactly_as_before():
    """D.1's 32 ID images and 32 outliers: the loss and its gradients are bit-identical to the one-to-one pairing."""
    x_id, x_out = torch.randn(32, 3, 2, 2), torch.randn(32, 3, 2, 2)
    y = torch.randint(0, 3, (32,))
    for op in ("mixup", "cutmix"):
        hyper = Hyper(beta=1.0, alpha=1.0, mix_op=op)
        results = []
        for compute in ("new", "old"):
            net = Recording()
            torch.manual_seed(7)
            generator = torch.Generator().manual_seed(2)
            if compute == "new":
                loss = method_loss("mixupoe", net, x_id, y, x_out, 3, hyper, generator)[0]
            else:
                loss = _old_mixupoe_loss(net, x_id, y, x_out, 3, hyper, generator)
            loss.backward()
            results.append((loss.detach(), net.fc.weight.grad.clone(), [x.clone() for x in net.inputs]))
        (new, new_grad, new_inputs), (old, old_grad, old_inputs) = results
        assert torch.equal(new, old) and torch.equal(new_grad, old_grad)
        assert all(torch.equal(a, b) for a, b in zip(new_inputs, old_inputs))
