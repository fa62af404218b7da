"""Input drift simulation: false-alarm rate and detection delay of the input-drift monitor (monitors/drift.py).

Inputs are realistic support questions generated from templates x vocabularies (a seed gives a fresh sample):
the reference traffic is a mix of five topics (billing, shipping, account, product, returns); at the change a
share `shift` of the traffic moves to a topic the reference never had (developer/API questions), the rest keeps
the old mix. Shift 0 is the false-alarm run: the same mix with the same noise throughout.

Each seed: `--per-bucket` inputs per bucket, a trailing reference of 30 buckets, a recent window of 10 buckets,
a change at bucket 40, and one evaluation per bucket from bucket 40 to 70 (30 evaluations), exactly as a rule
judges a window (uniform samples of at most `max_samples` each side, p < alpha and AUC >= min_auc). An alarm
before the change is a false alarm; the delay is buckets after the change until the first alarm.

The texts are embedded with the bundled MiniLM once (a pool per topic), then each seed draws from the pools.
Run:

    OPENBLAS_NUM_THREADS=1 python bench/drift_sim.py --seeds 100
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from pilothouse.monitors.drift_settings import DriftSettings
from pilothouse.monitors.drift_stats import two_sample

VOCAB: dict[str, list[str]] = {
    "amount": ["$12.99", "$49", "€30", "$120.50", "£8.75", "$299", "€1,050", "$5"],
    "card": ["Visa", "Mastercard", "Amex", "debit", "PayPal", "company credit"],
    "plan": ["Pro", "Team", "Starter", "Enterprise", "Family", "Basic"],
    "month": ["January", "March", "last month", "August", "Q3", "December"],
    "city": ["Berlin", "Lyon", "Austin", "Osaka", "Toronto", "Leeds", "Porto", "Denver"],
    "country": ["Canada", "Brazil", "Norway", "South Africa", "Japan", "Mexico", "Poland", "Australia"],
    "order": ["#48213", "A-99120", "#100482", "7731-XQ", "#55102", "B-20311"],
    "day": ["yesterday", "on Monday", "last week", "three days ago", "on the 14th", "before the weekend"],
    "product": [
        "X200 headphones",
        "AirLite kettle",
        "TrailPro backpack",
        "SmartPlug mini",
        "Nimbus desk lamp",
        "Pixel stand",
        "RoadRunner shoes",
        "Aqua bottle",
    ],
    "device": ["an iPhone 12", "a Samsung Galaxy", "a MacBook", "Windows 11", "an old Android tablet", "a Chromebook"],
    "email": ["gmail", "outlook", "work", "yahoo", "icloud"],
    "lang": ["Python", "JavaScript", "Go", "Java", "Ruby", "C#", "PHP", "Rust"],
    "event": ["order.created", "payment.failed", "refund.issued", "customer.updated", "shipment.delivered"],
    "endpoint": ["/v2/orders", "/v2/customers", "search", "bulk export", "/v1/invoices", "inventory"],
    "code": ["401", "403", "429", "500", "502", "timeout"],
}

TOPICS: dict[str, list[str]] = {
    "billing": [
        "Why was I charged {amount} twice on my {card} card?",
        "Can I get an invoice for my {plan} subscription for {month}?",
        "How do I update the billing address on my account? I moved to {city}.",
        "My payment of {amount} failed, what should I do?",
        "Is there a discount if I switch the {plan} plan to annual billing?",
        "I cancelled my {plan} plan but was still charged {amount} in {month}.",
        "Which payment methods do you accept besides {card}?",
    ],
    "shipping": [
        "Where is my order {order}? It was supposed to arrive {day}.",
        "Do you ship the {product} to {country}?",
        "How long does express delivery to {city} take?",
        "The tracking number for order {order} is not working.",
        "Can I change the delivery address for my {product} order to {city}?",
        "How much is shipping to {country} for an order of {amount}?",
        "My package {order} says delivered {day} but I never got it.",
    ],
    "account": [
        "I can't log in, the password reset email never arrives at my {email} address.",
        "How do I turn on two-factor authentication for my account?",
        "I saw a login from {city} that wasn't me, is my account hacked?",
        "How do I change the email on my account to my {email} one?",
        "Please delete my account and all my personal data.",
        "My account got locked after I typed the wrong password {day}.",
    ],
    "product": [
        "Does the {product} work with {device}?",
        "What's the battery life of the {product}?",
        "Is the {product} waterproof?",
        "What is the difference between the {product} and the {product2}?",
        "Can I use the {product} with {device} without an adapter?",
        "Is the {product} back in stock in {city}?",
        "How do I reset the {product} to factory settings?",
    ],
    "returns": [
        "I want to return the {product} I bought {day}, how do I do that?",
        "My {product} arrived broken, can I get a replacement?",
        "How long does a refund of {amount} take to reach my {card} card?",
        "Can I exchange the {product} for a different size or color?",
        "Do I have to pay for return shipping from {country}?",
    ],
    "developer": [
        "How do I authenticate to your REST API from {lang}?",
        "The webhook for {event} keeps returning a {code} error.",
        "What are the rate limits of the {endpoint} endpoint?",
        "Is there an official SDK for {lang}?",
        "Pagination on {endpoint} skips records when I call it from {lang}, is that a bug?",
        "How do I verify the signature of the {event} webhook in {lang}?",
        "Our API key suddenly gets {code} responses on {endpoint}.",
    ],
}
REFERENCE_MIX = {"billing": 0.25, "shipping": 0.3, "account": 0.15, "product": 0.2, "returns": 0.1}
NEW_TOPIC = "developer"
PREFIXES = ["", "", "", "Hi, ", "Hello! ", "Hey there. ", "Good morning, ", "Quick question: ", "Urgent: "]
SUFFIXES = ["", "", "", " Thanks!", " Thank you.", " Please help.", " Any idea?", " ASAP please.", " Cheers"]


def prompt(topic: str, rng: np.random.Generator) -> str:
    """One question of `topic`: a template with its slots filled, a greeting and sign-off at random."""
    template = str(rng.choice(TOPICS[topic]))
    values = {k: str(rng.choice(v)) for k, v in VOCAB.items()}
    values["product2"] = str(rng.choice([p for p in VOCAB["product"] if p != values["product"]]))
    text = template.format(**values)
    if rng.random() < 0.15:
        text = text.lower()
    return f"{rng.choice(PREFIXES)}{text}{rng.choice(SUFFIXES)}".strip()


def mix(shift: float) -> dict[str, float]:
    """The reference mix with a share `shift` moved to the new topic."""
    out = {k: v * (1.0 - shift) for k, v in REFERENCE_MIX.items()}
    if shift > 0:
        out[NEW_TOPIC] = shift
    return out


def draw_topics(weights: dict[str, float], count: int, rng: np.random.Generator) -> list[str]:
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return [names[i] for i in rng.choice(len(names), size=count, p=p / p.sum())]


def prompts(weights: dict[str, float], count: int, rng: np.random.Generator) -> list[str]:
    """`count` questions drawn from a topic mix."""
    return [prompt(t, rng) for t in draw_topics(weights, count, rng)]


# --- simulation -------------------------------------------------------------------------------------------

BASE, WINDOW, CHANGE, LAST = 30, 10, 40, 70


def pools(per_topic: int, seed: int) -> dict[str, np.ndarray]:
    from pilothouse.embeddings import load_minilm

    embedder = load_minilm()
    rng = np.random.default_rng(seed)
    return {t: np.asarray(embedder.embed([prompt(t, rng) for _ in range(per_topic)])) for t in TOPICS}


def run_seed(
    seed: int, shift: float, pool: dict[str, np.ndarray], per_bucket: int, settings: DriftSettings
) -> tuple[int | None, int]:
    """(first alarm bucket or None, evaluations) for one seed."""
    rng = np.random.default_rng(seed)
    buckets: list[np.ndarray] = []
    for b in range(LAST):
        weights = mix(shift) if b >= CHANGE else mix(0.0)
        topics = draw_topics(weights, per_bucket, rng)
        buckets.append(np.stack([pool[t][rng.integers(len(pool[t]))] for t in topics]))
    evaluations = 0
    for end in range(CHANGE, LAST + 1):
        start = end - WINDOW
        recent = np.concatenate(buckets[start:end])
        reference = np.concatenate(buckets[start - BASE : start])
        recent = recent[rng.permutation(len(recent))[: settings.max_samples]]
        reference = reference[rng.permutation(len(reference))[: settings.max_samples]]
        stats = two_sample(recent, reference, permutations=settings.permutations, seed=seed, alpha=settings.alpha)
        evaluations += 1
        if stats.p_value < settings.alpha and stats.auc >= settings.min_auc:
            return end, evaluations
    return None, evaluations


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--per-bucket", type=int, default=20)
    parser.add_argument("--shifts", default="0,0.1,0.2,0.3,0.5")
    parser.add_argument("--min-auc", type=float, default=DriftSettings().min_auc)
    parser.add_argument("--alpha", type=float, default=DriftSettings().alpha)
    args = parser.parse_args(argv)
    settings = DriftSettings(bucket_s=60, window_s=WINDOW * 60, baseline_s=BASE * 60, min_auc=args.min_auc,
                             alpha=args.alpha)  # fmt: skip
    started = time.perf_counter()
    pool = pools(300, seed=12345)
    print(f"embedded {sum(len(p) for p in pool.values())} questions in {time.perf_counter() - started:.1f}s")
    print(f"per bucket {args.per_bucket}, reference {BASE} buckets, window {WINDOW}, change at {CHANGE}, "
          f"{LAST - CHANGE + 1} evaluations; alpha {settings.alpha}, min_auc {settings.min_auc}")  # fmt: skip
    print(" shift | alarm rate | delay (median, buckets) | delay p90")
    for shift in (float(s) for s in args.shifts.split(",")):
        alarms, delays = 0, []
        for seed in range(args.seeds):
            at, _ = run_seed(1000 + seed, shift, pool, args.per_bucket, settings)
            if at is not None:
                alarms += 1
                delays.append(at - CHANGE)
        med = f"{statistics.median(delays):.1f}" if delays and shift > 0 else "-"
        p90 = f"{float(np.quantile(delays, 0.9)):.1f}" if delays and shift > 0 else "-"
        print(f"  {shift:4.2f} | {alarms / args.seeds:10.3f} | {med:>23} | {p90:>9}")
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
