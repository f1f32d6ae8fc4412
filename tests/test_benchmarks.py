"""Data streams: the bit-flipping generator, online permuted MNIST and random-label MNIST."""
import pytest
import torch

from plasticity.benchmarks.bit_flipping import BitFlipping
from plasticity.benchmarks.permuted_mnist import PermutedMnist
from plasticity.benchmarks.random_label_mnist import RandomLabelMnist
from plasticity.data.mnist import load_mnist
from plasticity.seeding import generator


def test_bit_flipping_redraws_the_flipping_bits_only_at_boundaries():
    stream = BitFlipping([0, 1], "cpu", flip_every=100)
    inputs, targets = stream.next_batch(1000)
    assert inputs.shape == (2, 1000, 20) and targets.shape == (2, 1000, 1)
    flipping = inputs[0, :, :15]
    for start in range(0, 1000, 100):
        assert (flipping[start:start + 100] == flipping[start]).all(), "held fixed within a segment"
    changed = [bool((flipping[s] != flipping[s - 100]).any()) for s in range(100, 1000, 100)]
    assert sum(changed) >= 7, "15 re-drawn bits almost always differ"
    random_bits = inputs[0, :, 15:]
    assert set(random_bits.unique().tolist()) == {0.0, 1.0} and 0.4 < random_bits.mean() < 0.6


def test_bit_flipping_flip_one_changes_exactly_one_bit():
    stream = BitFlipping([0], "cpu", flip_every=50, flip_one=True)
    flipping = stream.next_batch(500)[0][0, :, :15]
    for start in range(50, 500, 50):
        assert (flipping[start] != flipping[start - 50]).sum() == 1


def test_bit_flipping_target_is_the_ltu_network_by_hand():
    stream = BitFlipping([0], "cpu", num_inputs=3, num_flipping_bits=2, target_width=2, beta=0.7)
    stream.target_weight = torch.tensor([[[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]])
    stream.target_bias = torch.tensor([[1.0, -1.0]])
    stream.target_out_weight = torch.tensor([[[1.0, -1.0]]])
    stream.target_out_bias = torch.tensor([[1.0]])
    # S_i = (m - Σw + b)/2 = [(3-1+1)/2, (3+1-1)/2] = [1.5, 1.5]; tau = 0.7·4 - 1.5 = 1.3 for both units
    stream.threshold = 0.7 * 4 - (3 - stream.target_weight.sum(2) + stream.target_bias) / 2
    x = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    # pre-activations: [1+0+1+1, -1+0+1-1] = [3, -1] -> fires [1, 0] -> y = 1·1 + 1 = 2
    #                  [0+0+1+1, 0+0+1-1] = [2, 0]   -> fires [1, 0] -> y = 2
    assert stream.target(x).flatten().tolist() == [2.0, 2.0]


@pytest.mark.parametrize("args", [dict(), dict(flip_every=137, flip_one=True),
                                  dict(num_inputs=12, num_flipping_bits=4)])
def test_bit_flipping_looked_up_targets_are_the_target_network_s_outputs(args):
    stream = BitFlipping([0, 7], "cpu", **args)
    for n in (999, 1000):       # the second chunk starts inside a flip period
        inputs, targets = stream._generate(n)
        assert torch.equal(targets, stream.target(inputs))


def test_bit_flipping_chunking_is_invisible():
    whole = BitFlipping([5], "cpu", flip_every=300).next_batch(25_000)[0]
    pieces = BitFlipping([5], "cpu", flip_every=300)
    parts = [pieces.next_batch(n)[0] for n in (1, 9_999, 7, 14_993)]
    assert torch.equal(torch.cat(parts, dim=1), whole)


def test_permuted_mnist_tasks_are_permutations_of_shuffled_mnist(mnist_file):
    stream = PermutedMnist([0], "cpu", examples_per_task=300, data_path=mnist_file)
    probe = stream.peek(300)
    inputs, labels = stream.next_batch(300)
    assert torch.equal(probe, inputs), "the probe is the task's first examples"
    images = load_mnist(mnist_file)["x_train"].reshape(60000, -1).float() / 255
    gen = generator(0, "data")                     # the seed's data stream: per task a permutation, then an order
    for task in range(2):
        permutation, order = torch.randperm(784, generator=gen), torch.randperm(60000, generator=gen)
        assert torch.equal(inputs[0], images[order[:300]][:, permutation])
        inputs, labels = stream.next_batch(300)
    assert inputs.min() >= 0 and inputs.max() <= 1 and labels.dtype == torch.long


def test_random_label_mnist_repeats_a_task_s_images_and_labels_each_epoch_in_new_orders(mnist_file):
    stream = RandomLabelMnist([0, 1], "cpu", images_per_task=50, epochs_per_task=3, data_path=mnist_file)
    assert stream.examples_per_task == 150
    images = load_mnist(mnist_file)["x_train"].reshape(60000, -1).float() / 255
    gen = generator(1, "data")                     # seed 1's stream: per task images and labels, per epoch an order
    for task in range(2):
        subset, labels = torch.randperm(60000, generator=gen)[:50], torch.randint(10, (50,), generator=gen)
        epochs = []
        for epoch in range(3):
            order = torch.randperm(50, generator=gen)
            inputs, targets = stream.next_batch(50)
            assert torch.equal(inputs[1], images[subset[order]]) and torch.equal(targets[1], labels[order])
            epochs.append({(tuple(x.tolist()), int(y)) for x, y in zip(inputs[1], targets[1])})
        assert epochs[0] == epochs[1] == epochs[2], "every epoch shows the same 50 (image, label) pairs"
    # random labels: they disagree with MNIST's own labels about 90% of the time
    true = load_mnist(mnist_file)["y_train"][subset]
    assert (labels == true).float().mean() < 0.4
