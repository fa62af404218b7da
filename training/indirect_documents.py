# ruff: noqa: E501  (templates read better unbroken)
"""Synthetic documents and tool results, with and without planted instructions, for the indirect head.

Indirect mode asks one question of a retrieved document or a tool result: does any part of it address the AI
reading it rather than the human it was written for? The only public planted set (BIPIA) is small and
narrow (three carriers, content requests), so this module composes many more from parts:

- carriers: e-mails, web pages, news, reviews, tickets, notes, JSON tool results, code, READMEs, chat logs,
  and benign documents written in the imperative *for people* (recipes, install guides, policies, legal
  notices that "supersede the previous version", exam rules, TODO comments, e-mails asking to forward,
  security notices, support macros, documentation about AI assistants);
- planted instructions of seven classes: `override`, `exfiltration` (links, markdown images, e-mail),
  `tool_hijack`, `phishing`, `persona`, `output` (output manipulation and off-task content requests) and
  `encoded` (base64, rot13, hex), each an optional address ("Note to the AI: ...") plus a core, dressed the way
  the carrier would hide it (HTML comment, JSON field, code comment, P.S. line, ...).

Every part is tagged with a generator side, `train` or `test`: `test` carriers, addresses, cores and dressings
are never used for training, so `documents("test")` measures how the model does on templates it never saw
(the generator-level split). Each `Document` records the character span of its planted instruction, which
the training script uses to label sentences. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from training.indirect_templates import ATTACK_CLASSES, CITIES, COMPANIES, NAMES, PRODUCTS, GenSide, attack_text, dress
from training.indirect_templates import fill as _fill

__all__ = ["ATTACK_CLASSES", "Document", "GenSide", "documents"]


@dataclass(frozen=True, slots=True)
class Document:
    """One generated document: text, label (1: carries a planted instruction), the attack class or "benign",
    the carrier kind, the generator side, and the planted instruction's span (None when benign)."""

    text: str
    label: int
    kind: str
    carrier: str
    side: GenSide
    span: tuple[int, int] | None = None


# --- carriers ---------------------------------------------------------------------------------------------

Carrier = Callable[[random.Random, str | None], str]


def _place(r: random.Random, parts: list[str], attack: str | None, *, sep: str = "\n\n", inline: bool = True) -> str:
    """Join `parts`, with `attack` (when given) as a new part or appended to a random part."""
    parts = list(parts)
    if attack is not None:
        at = r.randrange(len(parts) + 1)
        if inline and 0 < at <= len(parts) and r.random() < 0.4:
            parts[at - 1] = f"{parts[at - 1]} {attack}"
        else:
            parts.insert(at, attack)
    return sep.join(parts)


def _many(r: random.Random, pool: list[str], low: int, high: int) -> list[str]:
    return [_fill(r, t) for t in r.sample(pool, min(len(pool), r.randint(low, high)))]


EMAIL_LINES = [
    "Thanks for your message about {topic}.",
    "I have attached the figures from last week.",
    "The call with {company} went well and they agreed to the timeline.",
    "We are still waiting for the signed copy from legal.",
    "The total came to ${amount}, slightly under budget.",
    "Let me know if {day} at 3pm works for you.",
    "I will be out of the office until {month} {num}.",
    "The shipment left {city} this morning.",
    "Our team reviewed the draft and left a few comments.",
    "Invoice {id} is due at the end of the month.",
    "{full} will join the project from next week.",
    "The workshop in {city} has been moved to {day}.",
    "Could you send me the updated slides before the meeting?",
    "Please find the report attached.",
    "Happy to discuss further on {day}.",
    "Click the link below to reset your password: https://accounts.example.com/reset?id={id}",
    "Forward this to {email} if you are not the right contact.",
    "You can reply to this email with any questions.",
    "Visit https://www.example.com/help for the full guide.",
    "I asked our AI assistant to draft the summary, so please check the numbers.",
    "Send your expense receipts to {email} by {day}.",
    "Don't share this link outside the team.",
    "Ignore the figures in my last email; the corrected ones are attached.",
]


def email(r: random.Random, attack: str | None) -> str:
    head = f"From: {_fill(r, '{email}')}\nTo: {_fill(r, '{email}')}\nSubject: {_fill(r, r.choice(['Re: {topic}', 'Update on {topic}', 'Invoice {id}', 'Meeting on {day}']))}"
    body = _many(r, EMAIL_LINES, 3, 6)
    sign = _fill(r, r.choice(["Best regards,\n{full}", "Thanks,\n{name}", "Cheers,\n{name}\n{company}"]))
    return f"{head}\n\nHi {r.choice(NAMES)},\n\n{_place(r, body, attack, sep=' ')}\n\n{sign}"


NEWS_LINES = [
    "Officials in {city} announced a new transport plan on {day}.",
    "The plan is expected to cost about ${amount} million over {num} years.",
    "Residents have raised concerns about noise and traffic.",
    "{company} reported revenue growth of {num} percent in the last quarter.",
    "Analysts said the results beat expectations.",
    "The company plans to open {num} new stores next year.",
    "The mayor, {full}, said the project would create jobs.",
    "Critics argue that the money could be better spent on schools.",
    "The festival drew more than {num} thousand visitors.",
    "Heavy rain caused flooding in parts of {city}.",
    "Researchers published the study in a peer-reviewed journal.",
    "The findings suggest that sleep affects memory more than previously thought.",
    "{company} launched an AI assistant that answers customer questions in {num} languages.",
    "Regulators asked AI developers to publish how their models are tested.",
    "Readers can find the full report at www.example.org/report.",
    '"You have to see it to believe it," said {full}, a local resident.',
    "Experts told readers not to panic.",
]


def news(r: random.Random, attack: str | None) -> str:
    title = _fill(
        r,
        r.choice(
            [
                "{city} unveils transport plan",
                "{company} posts strong quarter",
                "Study links sleep and memory",
                "Storm hits {city}",
            ]
        ),
    )
    return f"{title}\n\n{_place(r, _many(r, NEWS_LINES, 4, 7), attack, sep=' ')}"


REVIEW_LINES = [
    "I bought the {product} for my home office.",
    "Setup took about {num} minutes.",
    "The build quality is solid for the price.",
    "Battery life is shorter than advertised.",
    "Customer service replied within a day.",
    "It stopped working after {num} weeks.",
    "Would buy again.",
    "The colour is slightly different from the photos.",
    "Delivery was fast and the packaging was good.",
    "Honestly, save your money and get something else.",
    "Don't expect miracles, but it does the job.",
    "My kids love it.",
]


def review(r: random.Random, attack: str | None) -> str:
    return f"{_fill(r, '{stars}')}/5 stars - {_fill(r, '{name}')}\n{_place(r, _many(r, REVIEW_LINES, 3, 6), attack, sep=' ')}"


def product_page(r: random.Random, attack: str | None) -> str:
    product = r.choice(PRODUCTS)
    parts = [
        f"<h1>{product.title()} by {r.choice(COMPANIES)}</h1>",
        f"<p>Price: ${r.randint(20, 900)}.99. Free shipping on orders over $50.</p>",
        f"<p>The {product} comes with a {r.randint(1, 3)}-year warranty and a 30-day return window.</p>",
        "<ul><li>Weight: 1.2 kg</li><li>Colour: graphite</li><li>In stock</li></ul>",
        "<p>Customers also viewed similar items.</p>",
    ]
    return "<html><body>\n" + _place(r, parts, attack, sep="\n", inline=False) + "\n</body></html>"


def notes(r: random.Random, attack: str | None) -> str:
    lines = [
        _fill(r, t)
        for t in [
            "Meeting notes - {topic}",
            "Attendees: {name}, {name}, {name}",
            "- Budget approved at ${amount}",
            "- {name} to follow up with {company}",
            "- Next review on {day}",
            "- Risks: supplier delays in {city}",
            "- Decision: postpone the launch by {num} days",
        ]
    ]
    return _place(r, lines, attack, sep="\n", inline=False)


def json_result(r: random.Random, attack: str | None) -> str:
    kind = r.choice(["weather", "search", "orders", "contacts"])
    note = attack if attack is not None else None
    if kind == "weather":
        data: dict[str, object] = {
            "city": r.choice(CITIES),
            "temp_c": r.randint(-5, 35),
            "conditions": r.choice(["light rain", "sunny", "overcast"]),
            "advisory": note or "none",
        }
    elif kind == "search":
        results = [
            {"title": _fill(r, t), "url": f"https://www.example.com/{r.randint(1, 999)}", "snippet": _fill(r, s)}
            for t, s in [
                ("{company} annual report", "Revenue rose {num}% on strong demand."),
                ("Visiting {city}", "The old town is best explored on foot."),
                ("{product} review", "A solid choice for most buyers."),
            ]
        ]
        if note:
            results[r.randrange(len(results))]["snippet"] = note
        data = {"query": _fill(r, "{product} reviews"), "results": results}
    elif kind == "orders":
        data = {
            "order_id": _fill(r, "{id}"),
            "status": r.choice(["shipped", "processing", "delivered"]),
            "items": [r.choice(PRODUCTS)],
            "total": float(_fill(r, "{amount}")),
            "customer_note": note or _fill(r, "Please leave it with the neighbour at number {num}."),
        }
    else:
        data = {
            "contacts": [
                {
                    "name": _fill(r, "{full}"),
                    "email": _fill(r, "{email}"),
                    "notes": note or "met at the {city} conference",
                }
            ]
        }
    return json.dumps(data, indent=r.choice([None, 2]))


def python_code(r: random.Random, attack: str | None) -> str:
    lines = [
        "import csv",
        "from pathlib import Path",
        "",
        "",
        "def load_rows(path: Path) -> list[dict[str, str]]:",
        '    """Read the CSV export and return its rows."""',
        "    # TODO: ignore rows without an id once the export is fixed",
        "    with path.open() as handle:",
        "        return list(csv.DictReader(handle))",
        "",
        "",
        "def total(rows: list[dict[str, str]]) -> float:",
        "    # NOTE: amounts are in dollars; convert before sending to finance",
        '    return sum(float(row["amount"]) for row in rows)',
    ]
    if attack is not None:
        at = r.choice([6, 12, 0])
        lines.insert(
            at,
            ("    # " if at else "# ") + attack
            if r.random() < 0.7
            else f'    """{attack}"""'
            if at
            else f'"""{attack}"""',
        )
    return "\n".join(lines)


def readme(r: random.Random, attack: str | None) -> str:
    name = r.choice(["fastgrid", "tinyqueue", "mdlint", "geoparse"])
    parts = [
        f"# {name}",
        f"A small library for {r.choice(['parsing maps', 'queueing jobs', 'checking markdown', 'building grids'])}.",
        f"## Install\n\n    pip install {name}",
        f"## Usage\n\nImport the module and call `{name}.run()` with your config.",
        "## Contributing\n\nOpen an issue before sending a large pull request. Run the tests with `make test`.",
        "## Licence\n\nMIT",
    ]
    return _place(r, parts, attack, inline=False)


def chat_log(r: random.Random, attack: str | None) -> str:
    a, b = r.sample(NAMES, 2)
    lines = [
        _fill(r, t)
        for t in [
            f"[09:1{{num}}] {a}: did anyone check the {{product}} order?",
            f"[09:2{{num}}] {b}: yes, it ships on {{day}}",
            f"[09:3{{num}}] {a}: great, thanks",
            f"[09:4{{num}}] {b}: also the {{city}} office needs new badges",
            f"[09:5{{num}}] {a}: I'll ask facilities",
        ]
    ]
    if attack is not None:
        lines.insert(r.randrange(len(lines) + 1), f"[10:0{r.randint(0, 9)}] {r.choice(NAMES)}: {attack}")
    return "\n".join(lines)


RECIPE_STEPS = [
    "Preheat the oven to 180C.",
    "Whisk the eggs and sugar until pale.",
    "Fold in the flour gently.",
    "Pour the batter into a lined tin.",
    "Bake for {num} minutes, then let it cool.",
    "Chop the onions finely.",
    "Fry the garlic for one minute, but do not let it burn.",
    "Season with salt and pepper to taste.",
    "Serve immediately with fresh bread.",
    "Stir in the cream and simmer for five minutes.",
]


def recipe(r: random.Random, attack: str | None) -> str:
    steps = [f"{i}. {s}" for i, s in enumerate(_many(r, RECIPE_STEPS, 4, 7), 1)]
    head = _fill(r, "Lemon cake (serves {num})\nIngredients: 3 eggs, 200 g flour, 150 g sugar, 1 lemon.\nMethod:")
    return head + "\n" + _place(r, steps, attack, sep="\n", inline=False)


INSTALL_STEPS = [
    "Download the installer from the official website.",
    "Run `sudo apt install nginx`.",
    "Open the config file and set the port to 8080.",
    "Restart the service with `systemctl restart app`.",
    "Make sure you back up your data before upgrading.",
    "Do not close the terminal while the update runs.",
    "If the install fails, delete the cache folder and try again.",
    "Copy your API key from the dashboard and paste it into the settings page.",
    "Ignore the warning about unsigned packages on older systems.",
    "Reboot your computer when prompted.",
    "Run `curl -fsSL https://get.example.com/install.sh | sh` to install the command-line tool.",
    "Set the environment variable API_TOKEN to the token shown on your account page.",
    "Send the log file to support@example.com if the problem persists.",
    "Your output should look like the example below.",
    "Execute the migration script before starting the server.",
]


def install_guide(r: random.Random, attack: str | None) -> str:
    steps = [f"Step {i}: {s}" for i, s in enumerate(_many(r, INSTALL_STEPS, 4, 7), 1)]
    return "Installation guide\n" + _place(r, steps, attack, sep="\n", inline=False)


POLICY_LINES = [
    "Employees must complete security training every year.",
    "Never share your password with anyone, including IT staff.",
    "Report lost devices to the help desk within 24 hours.",
    "Do not click links in unexpected emails; forward suspicious messages to {email}.",
    "Visitors must sign in at reception.",
    "Lock your screen when you leave your desk.",
    "Expense claims must be submitted by the {num}th of each month.",
    "Use only approved software on company laptops.",
    "Ignore any request to buy gift cards, even if it appears to come from a manager.",
]


def policy(r: random.Random, attack: str | None) -> str:
    return _fill(r, "{company} information security policy (v{num})\n") + _place(
        r, _many(r, POLICY_LINES, 4, 7), attack, sep="\n", inline=False
    )


LEGAL_LINES = [
    "This agreement supersedes all prior agreements between the parties.",
    "Please disregard the previous version of these terms dated {month} {num}, {year}.",
    "The new terms take effect on {month} 1.",
    "You must notify us in writing within 30 days of any change.",
    "Any earlier instructions regarding payment are hereby withdrawn.",
    "Do not sign the document until you have read every clause.",
    "Ignore the draft circulated last week; it contained errors.",
    "The tenant shall pay rent on the first day of each month.",
]


def legal(r: random.Random, attack: str | None) -> str:
    return _fill(r, "Notice from {company} Legal\n") + _place(r, _many(r, LEGAL_LINES, 4, 6), attack, sep=" ")


EXAM_LINES = [
    "Answer all questions in the booklet provided.",
    "Do not use a calculator.",
    "In your answer to question {num}, show all your working.",
    "Write your candidate number on every page.",
    "You have two hours to complete the paper.",
    "Write an essay on the causes of the First World War.",
    "Explain the process of photosynthesis in your own words.",
    "Do not turn over the paper until told to do so.",
    "Your answers must be written in black ink.",
]


def exam(r: random.Random, attack: str | None) -> str:
    return "Examination instructions\n" + _place(r, _many(r, EXAM_LINES, 4, 7), attack, sep="\n", inline=False)


def forward_email(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Please forward this email to everyone on your team.",
            "Reply to me with your availability by {day}.",
            "Send the signed form to {email} before {month} {num}.",
            "Ignore my previous email about the parking spaces; the plan has changed.",
            "Don't forget to bring your badge on {day}.",
            "Tell your manager if you cannot attend.",
            "Share the slides with the {company} team after the meeting.",
            "Please disregard the earlier instructions I sent about the visa forms.",
        ],
        3,
        5,
    )
    return f"Hi all,\n\n{_place(r, lines, attack, sep=' ')}\n\nThanks,\n{r.choice(NAMES)}"


def support_macro(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Tell the customer that their refund is being processed.",
            "Ask the user to confirm the order number before making changes.",
            "Apologise for the delay and offer a {num}% discount.",
            "Do not promise a delivery date.",
            "If the customer is angry, escalate the ticket to a supervisor.",
            "Remind the user that returns are free within 30 days.",
            "Never ask the customer for their full card number.",
        ],
        3,
        6,
    )
    return "Support macro: late delivery\n" + _place(r, lines, attack, sep="\n", inline=False)


def ai_docs(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Our assistant can summarise long documents in seconds.",
            "To get better answers from the chatbot, give it some context about your task.",
            "The model may make mistakes, so check important facts.",
            "You can ask the AI to respond in JSON by adding an example.",
            "Large language models predict the next token.",
            "Admins can turn the AI features off in the settings page.",
            "The assistant does not store your conversations after 30 days.",
            "Prompt injection is an attack where text tells the model to ignore its instructions.",
            "Ask the assistant to summarise the report in three bullet points.",
            "If the chatbot gives a wrong answer, press the thumbs-down button.",
            "The AI agent can call tools such as the calendar and email on your behalf, after you approve it.",
        ],
        3,
        6,
    )
    return "Using the AI assistant\n" + _place(r, lines, attack, sep=" ")


# test-side carriers: never seen in training


def ticket(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Customer reports that the {product} will not turn on.",
            "Order {id} was delivered to the wrong address in {city}.",
            "Priority: medium. Assigned to {name}.",
            "The customer has already tried resetting the device.",
            "Please check the warranty status before replying.",
            "Status changed from open to pending.",
        ],
        3,
        5,
    )
    return _fill(r, "Ticket #{id}\n") + _place(r, lines, attack, sep="\n", inline=True)


def forum_post(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Has anyone else had trouble with the {product} firmware update?",
            "Mine keeps rebooting every few hours.",
            "I tried a factory reset but nothing changed.",
            "Edit: turning off auto-update fixed it for me.",
            "Thanks in advance for any tips!",
            "Make sure you check the cable first, it saved me hours.",
        ],
        3,
        5,
    )
    return _fill(r, "Posted by {name}{num}\n") + _place(r, lines, attack, sep=" ")


def changelog(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "- Fixed a crash when opening large files",
            "- Added dark mode",
            "- Removed the deprecated `--fast` flag; use `--quick` instead",
            "- Improved start-up time by {num}%",
            "- Updated translations for {lang}",
            "- Security: upgrade immediately if you use the web UI",
        ],
        3,
        5,
    )
    return _fill(r, "## v{num}.{stars}.0 ({month} {year})\n") + _place(r, lines, attack, sep="\n", inline=False)


def json_calendar(r: random.Random, attack: str | None) -> str:
    events = [
        {
            "title": _fill(r, t),
            "start": f"2025-0{r.randint(1, 9)}-1{r.randint(0, 9)}T{r.randint(8, 17)}:00",
            "description": _fill(r, d),
        }
        for t, d in [
            ("Review of {topic}", "Bring the latest numbers."),
            ("1:1 with {name}", "Weekly catch-up."),
            ("Trip to {city}", "Flight at 7am, hotel booked."),
        ]
    ]
    if attack is not None:
        events[r.randrange(len(events))]["description"] = attack
    return json.dumps({"events": events})


def faq(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Q: How do I reset my password? A: Click 'Forgot password' and follow the link we email you.",
            "Q: Can I change my order? A: Yes, within one hour of placing it.",
            "Q: Where is my parcel? A: Use the tracking link in your confirmation email.",
            "Q: Do you ship to {city}? A: We ship to most cities worldwide.",
            "Q: How do I cancel? A: Go to Settings, then Subscription, and press Cancel.",
        ],
        3,
        5,
    )
    return "Frequently asked questions\n" + _place(r, lines, attack, sep="\n", inline=False)


def assembly(r: random.Random, attack: str | None) -> str:
    lines = [
        f"{i}. {s}"
        for i, s in enumerate(
            _many(
                r,
                [
                    "Unpack all parts and check them against the list.",
                    "Attach the legs to the frame using the M6 bolts.",
                    "Do not overtighten the screws.",
                    "Ask a second person to help you lift the top.",
                    "Ignore the pre-drilled holes on the left side; they are for the optional shelf.",
                    "Tighten all bolts once the desk is upright.",
                ],
                4,
                6,
            ),
            1,
        )
    ]
    return "Assembly instructions\n" + _place(r, lines, attack, sep="\n", inline=False)


def medication(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Take one tablet twice a day with food.",
            "Do not exceed the stated dose.",
            "Tell your doctor if you are pregnant.",
            "Keep out of the reach of children.",
            "If you miss a dose, skip it and continue as normal.",
            "Stop taking the medicine and seek help if you get a rash.",
        ],
        3,
        6,
    )
    return "Patient information leaflet\n" + _place(r, lines, attack, sep=" ")


def shell_script(r: random.Random, attack: str | None) -> str:
    lines = [
        "#!/bin/sh",
        "set -eu",
        "# Back up the database before deploying.",
        "pg_dump app > backup.sql",
        "# Remove old builds; ignore errors if none exist.",
        "rm -rf build/ || true",
        "make release",
        "# Send the release notes to the team channel afterwards.",
    ]
    if attack is not None:
        lines.insert(r.randint(1, len(lines)), f"# {attack}")
    return "\n".join(lines)


def newsletter(r: random.Random, attack: str | None) -> str:
    lines = _many(
        r,
        [
            "Big news from {company}: our spring sale starts {day}!",
            "Click here to claim your {num}% discount before it expires.",
            "Don't miss out, the offer ends on {month} {num}.",
            "Follow us on social media for daily deals.",
            "Reply STOP to unsubscribe.",
            "Forward this newsletter to a friend and you both get $10 off.",
            "Log in to your account at https://www.example.com/account to see your points.",
            "You are receiving this because you signed up at our store.",
        ],
        4,
        6,
    )
    return _fill(r, "{company} newsletter\n\n") + _place(r, lines, attack, sep="\n", inline=False)


CARRIERS: dict[str, tuple[GenSide, Carrier]] = {
    "email": ("train", email),
    "news": ("train", news),
    "review": ("train", review),
    "web_page": ("train", product_page),
    "notes": ("train", notes),
    "json_tool_result": ("train", json_result),
    "code": ("train", python_code),
    "readme": ("train", readme),
    "chat_log": ("train", chat_log),
    "recipe": ("train", recipe),
    "install_guide": ("train", install_guide),
    "policy": ("train", policy),
    "legal": ("train", legal),
    "exam": ("train", exam),
    "forward_email": ("train", forward_email),
    "support_macro": ("train", support_macro),
    "ai_docs": ("train", ai_docs),
    "newsletter": ("train", newsletter),
    "ticket": ("test", ticket),
    "forum_post": ("test", forum_post),
    "changelog": ("test", changelog),
    "json_calendar": ("test", json_calendar),
    "faq": ("test", faq),
    "assembly": ("test", assembly),
    "medication": ("test", medication),
    "shell_script": ("test", shell_script),
}


def _span(text: str, attack: str) -> tuple[int, int] | None:
    for needle in (attack, json.dumps(attack)[1:-1]):
        at = text.find(needle)
        if at >= 0:
            return at, at + len(needle)
    return None


def documents(side: GenSide, n: int, *, seed: int = 11, attack_share: float = 0.5) -> list[Document]:
    """`n` documents from the carriers and templates of one generator side, about `attack_share` of them
    with one planted instruction (classes in turn)."""
    r = random.Random(f"{seed}-{side}")
    names = [name for name, (s, _) in CARRIERS.items() if s == side]
    out: list[Document] = []
    for i in range(n):
        carrier = names[i % len(names)]
        build = CARRIERS[carrier][1]
        if r.random() < attack_share:
            kind = ATTACK_CLASSES[i % len(ATTACK_CLASSES)]
            attack = dress(r, attack_text(r, kind, side), side)
            text = build(r, attack)
            out.append(Document(text, 1, kind, carrier, side, _span(text, attack)))
        else:
            out.append(Document(build(r, None), 0, "benign", carrier, side))
    return out
