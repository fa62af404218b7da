"""Slot fillers for the template-generated cache pairs (dev_pairs.py): one `Domain` per field of questions.

Written as plain domain knowledge (what people ask about in each field), independently of the contrast
check's word lists. Each domain gives what the class templates need: tasks (a verb, its object, a rewording,
an opposite action), yes/no facts, adjectives with a synonym and an opposite, names, comparisons, constraints,
specific/general objects, moves between two places, plural nouns with a predicate, role pairs, versions,
abbreviations, and question frames with a number, a date, a time frame and a unit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    verb: str
    obj: str
    syn_verb: str  # a rewording of the verb ...
    syn_obj: str  # ... and of the object, meaning the same
    anti: str | None  # the opposite action, if there is one
    pp: str  # past participle of verb
    extra: str  # a constraint that changes the question when added


@dataclass(frozen=True)
class Domain:
    name: str
    tasks: tuple[Task, ...]
    facts: tuple[str, ...]  # "Is it safe to {fact}?"
    adjs: tuple[tuple[str, str, str, str], ...]  # (subject, adjective, synonym, opposite)
    names: tuple[str, ...]  # "What is the {frame} {name}?"
    name_frame: str  # a question with {name}
    comps: tuple[tuple[str, str, str], ...]  # (a, b, comparative): "Is a {cmp} than b?"
    specific: tuple[tuple[str, str], ...]  # (specific object, general object) for "How do I {verb} ...?"
    moves: tuple[str, ...]  # a question with {a} and {b} (from a to b)
    places: tuple[str, ...]  # values of a and b
    plurals: tuple[tuple[str, str], ...]  # (plural noun, predicate): "Do all {noun} {pred}?"
    roles: tuple[tuple[str, str, str], ...]  # (a, verb, b): "Can {a} {verb} {b}?"
    versions: tuple[tuple[str, str, str], ...]  # (question with {v}, version a, version b)
    abbrevs: tuple[tuple[str, str], ...]  # (long form, abbreviation), used in "How do I check my {x}?"
    count_q: tuple[str, ...]  # questions with {n} (a number)
    date_q: tuple[str, ...]  # questions with {d} (a day, month or relative day)
    frame_q: tuple[str, ...]  # questions with {t} ("per day", "per week", ...)
    unit_q: tuple[tuple[str, str, str], ...]  # (question with {n} {u}, unit a, unit b)
    langs: tuple[str, ...]  # languages things here are written in


PROGRAMMING = ("Python", "JavaScript", "Java", "Go", "Rust", "C#", "TypeScript", "Ruby", "PHP", "Kotlin")
SPOKEN = ("Spanish", "French", "German", "Italian", "Portuguese", "Japanese", "Mandarin", "Arabic")

DOMAINS: tuple[Domain, ...] = (
    Domain(
        name="support",
        tasks=(
            Task("reset", "my password", "change", "my login password", None, "reset", "from the mobile app"),
            Task("cancel", "my subscription", "end", "my subscription", "renew", "cancelled", "before the trial ends"),
            Task("delete", "my account", "remove", "my account", "create", "deleted", "without losing my data"),
            Task(
                "enable",
                "two-factor authentication",
                "turn on",
                "two-factor authentication",
                "disable",
                "enabled",
                "for the whole team",
            ),
            Task("add", "a team member", "invite", "a new team member", "remove", "added", "as an admin"),
            Task(
                "update",
                "my billing address",
                "change",
                "the billing address on my account",
                None,
                "updated",
                "for past invoices",
            ),
        ),
        facts=(
            "share my account with a colleague",
            "use the same email for two accounts",
            "log in from two devices at once",
        ),
        adjs=(("the premium plan", "cheap", "inexpensive", "expensive"), ("the export", "fast", "quick", "slow")),
        names=("Slack", "Salesforce", "Zapier", "HubSpot", "Jira", "Trello"),
        name_frame="Can I connect my workspace to {name}?",
        comps=(("the annual plan", "the monthly plan", "cheaper"), ("the desktop app", "the web version", "faster")),
        specific=(("my Gmail password", "my password"), ("the invoice from March", "an invoice")),
        moves=("How do I move my projects from {a} to {b}?", "Can I transfer my license from {a} to {b}?"),
        places=("my personal account", "the team workspace", "the old workspace", "my work account"),
        plurals=(("plans", "include phone support"), ("invoices", "show the tax amount")),
        roles=(("an admin", "remove", "the owner"), ("a guest", "invite", "a member")),
        versions=(("Does the {v} app support offline mode?", "version 4", "version 5"),),
        abbrevs=(("single sign-on", "SSO"), ("two-factor authentication", "2FA")),
        count_q=("Can I add {n} users on the basic plan?", "How do I get a refund after {n} days?"),
        date_q=("Is support available on {d}?", "Will my card be charged on {d}?"),
        frame_q=("How many API calls can I make {t}?", "How much does the pro plan cost {t}?"),
        unit_q=(("Can I upload a file of {n} {u}?", "MB", "GB"),),
        langs=SPOKEN,
    ),
    Domain(
        name="python",
        tasks=(
            Task("reverse", "a list", "invert the order of", "a list", None, "reversed", "without creating a copy"),
            Task(
                "sort", "a dictionary by value", "order", "a dict by its values", None, "sorted", "in descending order"
            ),
            Task("read", "a CSV file", "load", "a CSV file", "write", "read", "with pandas"),
            Task("install", "a package", "set up", "a package", "uninstall", "installed", "without pip"),
            Task(
                "remove",
                "duplicates from a list",
                "get rid of",
                "duplicate items in a list",
                "keep",
                "removed",
                "while keeping the order",
            ),
            Task(
                "convert",
                "a string to an integer",
                "turn",
                "a string into an int",
                None,
                "converted",
                "with error handling",
            ),
        ),
        facts=("modify a list while iterating over it", "use mutable default arguments", "catch a bare exception"),
        adjs=(("a list comprehension", "fast", "quick", "slow"), ("a tuple", "mutable", "changeable", "immutable")),
        names=("NumPy", "pandas", "Django", "Flask", "FastAPI", "SQLAlchemy"),
        name_frame="How do I log errors in {name}?",
        comps=(("a list", "a tuple", "faster"), ("asyncio", "threading", "better for network calls")),
        specific=(("a nested list", "a list"), ("a JSON file", "a file")),
        moves=("How do I convert a {a} to a {b}?", "How do I cast {a} to {b}?"),
        places=("list", "set", "tuple", "dictionary"),
        plurals=(("functions", "return a value"), ("objects", "have a hash")),
        roles=(("a child class", "override", "the parent class"), ("a module", "import", "the package")),
        versions=(
            ("Is the walrus operator available in Python {v}?", "3.8", "3.7"),
            ("How do I install {v} on Ubuntu?", "Python 3.12", "Python 2.7"),
        ),
        abbrevs=(("virtual environment", "venv"), ("regular expression", "regex")),
        count_q=("How do I round a float to {n} decimal places?", "How do I split a list into {n} chunks?"),
        date_q=("How do I get the date of last {d}?", "How do I check if a date falls on a {d}?"),
        frame_q=("How do I schedule a Python script to run {t}?", "How do I group timestamps {t} with pandas?"),
        unit_q=(("How do I make a Python process use less than {n} {u} of memory?", "MB", "GB"),),
        langs=PROGRAMMING,
    ),
    Domain(
        name="devops",
        tasks=(
            Task(
                "restart",
                "a Docker container",
                "reboot",
                "a Docker container",
                "stop",
                "restarted",
                "without losing data",
            ),
            Task(
                "open",
                "port 8080 on the firewall",
                "allow",
                "port 8080 through the firewall",
                "close",
                "opened",
                "only for my IP",
            ),
            Task(
                "deploy",
                "the app to production",
                "ship",
                "the app to prod",
                "roll back",
                "deployed",
                "with zero downtime",
            ),
            Task(
                "increase",
                "the memory limit of a pod",
                "raise",
                "a pod's memory limit",
                "decrease",
                "increased",
                "in Kubernetes",
            ),
            Task("create", "a new branch", "make", "a new git branch", "delete", "created", "from an old commit"),
        ),
        facts=(
            "run the database in a container",
            "force push to the main branch",
            "store secrets in environment variables",
        ),
        adjs=(("this query", "slow", "sluggish", "fast"), ("the build", "stable", "reliable", "flaky")),
        names=("AWS", "Azure", "Google Cloud", "DigitalOcean", "Heroku", "Vercel"),
        name_frame="How much does it cost to host a static site on {name}?",
        comps=(("Postgres", "MySQL", "faster for writes"), ("Kubernetes", "Docker Swarm", "easier to run")),
        specific=(("a Redis container", "a container"), ("the staging database", "the database")),
        moves=("How do I migrate data from {a} to {b}?", "How do I copy files from {a} to {b}?"),
        places=("the server", "my laptop", "an S3 bucket", "the container"),
        plurals=(("pods", "restart after a crash"), ("containers", "share the host kernel")),
        roles=(("the client", "authenticate", "the server"), ("the proxy", "forward requests to", "the load balancer")),
        versions=(
            ("Is {v} still supported?", "Ubuntu 20.04", "Ubuntu 22.04"),
            ("How do I upgrade to {v}?", "Node 20", "Node 18"),
        ),
        abbrevs=(("continuous integration", "CI"), ("domain name system", "DNS")),
        count_q=("How do I keep only the last {n} log files?", "How do I scale the deployment to {n} replicas?"),
        date_q=("How do I run a cron job every {d}?", "Why did the deploy fail on {d}?"),
        frame_q=("How do I rotate logs {t}?", "How many requests can the API gateway handle {t}?"),
        unit_q=(("How do I limit a container to {n} {u} of RAM?", "MB", "GB"),),
        langs=PROGRAMMING,
    ),
    Domain(
        name="health",
        tasks=(
            Task("lower", "my blood pressure", "reduce", "my blood pressure", "raise", "lowered", "without medication"),
            Task("treat", "a migraine", "relieve", "a migraine", None, "treated", "during pregnancy"),
            Task("stop", "taking antidepressants", "quit", "taking antidepressants", "start", "stopped", "all at once"),
            Task("gain", "weight", "put on", "weight", "lose", "gained", "after surgery"),
            Task("prevent", "a cold", "avoid", "catching a cold", None, "prevented", "while travelling"),
        ),
        facts=("take ibuprofen with coffee", "drink alcohol on antibiotics", "exercise with a fever"),
        adjs=(
            ("a resting heart rate of 50", "normal", "typical", "abnormal"),
            ("this rash", "contagious", "infectious", "harmless"),
        ),
        names=("ibuprofen", "paracetamol", "aspirin", "amoxicillin", "metformin", "lisinopril"),
        name_frame="What are the side effects of {name}?",
        comps=(
            ("ibuprofen", "paracetamol", "better for a headache"),
            ("walking", "running", "healthier for the knees"),
        ),
        specific=(("a migraine headache", "a headache"), ("type 2 diabetes", "diabetes")),
        moves=("Can a cold spread from {a} to {b}?", "How fast does the infection move from {a} to {b}?"),
        places=("the throat", "the ears", "the lungs", "the sinuses"),
        plurals=(("vaccines", "cause a fever"), ("antibiotics", "kill viruses")),
        roles=(("a dog", "infect", "a human"), ("the mother", "pass the virus to", "the baby")),
        versions=(("Is the {v} vaccine safe for kids?", "2023", "2024"),),
        abbrevs=(("blood pressure", "BP"), ("body mass index", "BMI")),
        count_q=("Is it safe to take {n} ibuprofen tablets at once?", "Is a fever of {n} degrees dangerous?"),
        date_q=("Can I get the flu shot in {d}?", "Is the clinic open on {d}?"),
        frame_q=("How much water should I drink {t}?", "How many cigarettes {t} is harmful?"),
        unit_q=(("Is {n} {u} of vitamin D too much?", "mg", "mcg"), ("Is {n} {u} of caffeine a lot?", "mg", "g")),
        langs=SPOKEN,
    ),
    Domain(
        name="travel",
        tasks=(
            Task("book", "a hotel room", "reserve", "a hotel room", "cancel", "booked", "near the airport"),
            Task("change", "my flight", "reschedule", "my flight", None, "changed", "to an earlier time"),
            Task("check in", "for my flight", "do the check-in", "for my flight", None, "checked in", "online"),
            Task("rent", "a car", "hire", "a car", "return", "rented", "without a credit card"),
            Task("get", "a visa", "obtain", "a visa", None, "obtained", "on arrival"),
        ),
        facts=("drink tap water in Mexico", "bring a power bank on a plane", "travel with an expired passport"),
        adjs=(
            ("flying in January", "cheap", "inexpensive", "expensive"),
            ("the metro at night", "safe", "secure", "dangerous"),
        ),
        names=("Lisbon", "Rome", "Tokyo", "Barcelona", "Prague", "Vienna"),
        name_frame="What's the best time of year to visit {name}?",
        comps=(("flying", "taking the train", "cheaper"), ("a hostel", "an Airbnb", "safer")),
        specific=(("a window seat", "a seat"), ("a direct flight", "a flight")),
        moves=("How long is the train from {a} to {b}?", "How much is a taxi from {a} to {b}?"),
        places=("the airport", "the city centre", "the hotel", "the train station"),
        plurals=(("airlines", "charge for carry-on bags"), ("hotels", "offer free breakfast")),
        roles=(("the airline", "compensate", "the passenger"), ("the hotel", "charge", "the travel agency")),
        versions=(("Do I need a {v} to enter the US?", "ESTA", "B-2 visa"),),
        abbrevs=(("estimated time of arrival", "ETA"), ("passport number", "passport no.")),
        count_q=("Can I bring {n} bottles of wine through customs?", "Is a {n} hour layover enough?"),
        date_q=("Are museums in Paris open on {d}?", "Is it busy at the airport on {d}?"),
        frame_q=("How much should I budget {t} in Thailand?", "How much does parking at the airport cost {t}?"),
        unit_q=(("Can I carry {n} {u} of liquid in my hand luggage?", "ml", "liters"),),
        langs=SPOKEN,
    ),
    Domain(
        name="finance",
        tasks=(
            Task(
                "open", "a savings account", "set up", "a savings account", "close", "opened", "with no minimum deposit"
            ),
            Task(
                "increase",
                "my credit limit",
                "raise",
                "my credit limit",
                "lower",
                "increased",
                "without a hard inquiry",
            ),
            Task("transfer", "money abroad", "send", "money overseas", None, "transferred", "without fees"),
            Task("buy", "index funds", "purchase", "index funds", "sell", "bought", "in a retirement account"),
            Task("pay off", "my credit card", "clear", "my credit card balance", None, "paid off", "early"),
        ),
        facts=("withdraw from my 401k early", "have two checking accounts", "pay rent with a credit card"),
        adjs=(("an index fund", "risky", "dangerous", "safe"), ("this loan", "cheap", "affordable", "expensive")),
        names=("Vanguard", "Fidelity", "Schwab", "Revolut", "Chase", "Wise"),
        name_frame="What are the fees for a brokerage account at {name}?",
        comps=(
            ("renting", "buying a house", "cheaper"),
            ("a Roth IRA", "a traditional IRA", "better for young people"),
        ),
        specific=(("my student loan", "a loan"), ("a high-yield savings account", "a savings account")),
        moves=("How do I move money from {a} to {b}?", "Are there fees to transfer from {a} to {b}?"),
        places=("my checking account", "my savings account", "PayPal", "my brokerage account"),
        plurals=(("banks", "charge overdraft fees"), ("credit cards", "offer cash back")),
        roles=(("the landlord", "sue", "the tenant"), ("the bank", "owe", "the customer")),
        versions=(("Where do I report this on the {v} tax return?", "2023", "2024"),),
        abbrevs=(("annual percentage rate", "APR"), ("exchange-traded fund", "ETF")),
        count_q=("Is {n} percent interest on a car loan high?", "How much is {n} dollars in euros?"),
        date_q=("Is the stock market open on {d}?", "When is the tax deadline in {d}?"),
        frame_q=("How much should I save {t}?", "What is the interest {t} on a $10,000 loan?"),
        unit_q=(("Is {n} {u} a good salary in London?", "pounds", "dollars"),),
        langs=SPOKEN,
    ),
    Domain(
        name="hr",
        tasks=(
            Task("request", "parental leave", "ask for", "parental leave", None, "requested", "after six months"),
            Task("hire", "a contractor", "bring on", "a contractor", "fire", "hired", "from another country"),
            Task(
                "approve",
                "a vacation request",
                "accept",
                "a vacation request",
                "reject",
                "approved",
                "in the HR portal",
            ),
            Task("submit", "my timesheet", "send in", "my timesheet", None, "submitted", "after the deadline"),
            Task("update", "my tax withholding", "change", "my tax withholding", None, "updated", "mid-year"),
        ),
        facts=("work remotely from another country", "take unpaid leave", "have a second job"),
        adjs=(("the notice period", "long", "lengthy", "short"), ("this raise", "high", "large", "low")),
        names=("Workday", "BambooHR", "Gusto", "Rippling", "ADP", "Personio"),
        name_frame="How do I view my payslip in {name}?",
        comps=(("a contractor", "an employee", "cheaper"), ("a four-day week", "a five-day week", "more productive")),
        specific=(("sick leave for a child", "sick leave"), ("my manager's approval", "approval")),
        moves=("Can I transfer from {a} to {b}?", "How do I move an employee from {a} to {b}?"),
        places=("the London office", "the Berlin office", "sales", "engineering"),
        plurals=(("employees", "get a bonus"), ("managers", "approve overtime")),
        roles=(("the employer", "pay", "the employee"), ("my manager", "evaluate", "the team lead")),
        versions=(("Which {v} form do I fill in?", "W-4", "W-2"),),
        abbrevs=(("paid time off", "PTO"), ("human resources", "HR")),
        count_q=("Do I get {n} weeks of vacation?", "Can I work {n} hours a week part-time?"),
        date_q=("Is {d} a company holiday?", "Is payroll processed on {d}?"),
        frame_q=("How many sick days do I get {t}?", "How much overtime can I work {t}?"),
        unit_q=(("Is a salary of {n} {u} fair for a junior developer?", "euros", "dollars"),),
        langs=SPOKEN,
    ),
    Domain(
        name="education",
        tasks=(
            Task(
                "apply",
                "for a scholarship",
                "put in an application",
                "for a scholarship",
                None,
                "applied",
                "as an international student",
            ),
            Task("drop", "a class", "withdraw from", "a course", "add", "dropped", "after the deadline"),
            Task("improve", "my essay", "make better", "my essay", None, "improved", "in one day"),
            Task("memorize", "vocabulary", "learn by heart", "vocabulary", "forget", "memorized", "faster"),
        ),
        facts=("use AI to write my essay", "take two exams on the same day", "retake a final exam"),
        adjs=(("this course", "hard", "difficult", "easy"), ("the reading list", "long", "lengthy", "short")),
        names=("Harvard", "Oxford", "Stanford", "MIT", "Cambridge", "Yale"),
        name_frame="What GPA do I need to get into {name}?",
        comps=(
            ("online classes", "in-person classes", "more effective"),
            ("flashcards", "rereading", "better for exams"),
        ),
        specific=(("a calculus exam", "an exam"), ("my history essay", "my essay")),
        moves=("Can I transfer credits from {a} to {b}?", "How do I switch from {a} to {b}?"),
        places=("community college", "a university", "biology", "chemistry"),
        plurals=(("universities", "require the SAT"), ("courses", "have a final exam")),
        roles=(("a teacher", "fail", "a student"), ("the student", "grade", "the teacher")),
        versions=(("Is the {v} edition of the textbook okay?", "5th", "6th"),),
        abbrevs=(("grade point average", "GPA"), ("teaching assistant", "TA")),
        count_q=("Is {n} hours of study a day enough?", "Can I take {n} classes in one semester?"),
        date_q=("Is the library open on {d}?", "Is the exam on {d}?"),
        frame_q=("How many pages should I read {t}?", "How much homework is normal {t}?"),
        unit_q=(("Is a {n} {u} walk to campus too far?", "km", "miles"),),
        langs=SPOKEN,
    ),
    Domain(
        name="cooking",
        tasks=(
            Task("thicken", "a sauce", "make thicker", "a sauce", "thin", "thickened", "without flour"),
            Task("freeze", "cooked rice", "store in the freezer", "cooked rice", "thaw", "frozen", "for a month"),
            Task("bake", "bread", "make", "homemade bread", None, "baked", "without yeast"),
            Task("soften", "butter", "make soft", "butter", "harden", "softened", "quickly"),
            Task("reheat", "pizza", "warm up", "leftover pizza", None, "reheated", "in a microwave"),
        ),
        facts=("eat raw cookie dough", "leave cooked chicken out overnight", "refreeze thawed meat"),
        adjs=(("cast iron", "heavy", "weighty", "light"), ("this recipe", "spicy", "hot", "mild")),
        names=("Thai", "Mexican", "Indian", "Ethiopian", "Korean", "Greek"),
        name_frame="What spices are used in {name} cooking?",
        comps=(("brown rice", "white rice", "healthier"), ("olive oil", "butter", "better for frying")),
        specific=(("sourdough bread", "bread"), ("a chocolate cake", "a cake")),
        moves=("How do I convert a recipe from {a} to {b}?", "Can I switch from {a} to {b} in this recipe?"),
        places=("butter", "oil", "sugar", "honey"),
        plurals=(("eggs", "need to be refrigerated"), ("mushrooms", "need to be washed")),
        roles=(("the chicken", "flavor", "the rice"), ("vinegar", "replace", "lemon juice")),
        versions=(("Is the {v} version of this recipe better?", "vegan", "gluten-free"),),
        abbrevs=(("tablespoon", "tbsp"), ("teaspoon", "tsp")),
        count_q=("Can I double a recipe that serves {n}?", "How long do I boil {n} eggs?"),
        date_q=("Is the farmers market open on {d}?", "What should I cook for dinner on {d}?"),
        frame_q=("How many eggs is it okay to eat {t}?", "How much fruit should I eat {t}?"),
        unit_q=(
            ("How long should I roast a chicken of {n} {u}?", "kg", "pounds"),
            ("Bake at {n} degrees {u}", "Celsius", "Fahrenheit"),
        ),
        langs=SPOKEN,
    ),
    Domain(
        name="housing",
        tasks=(
            Task("break", "my lease", "terminate", "my rental agreement", "renew", "broken", "without a penalty"),
            Task(
                "get back",
                "my security deposit",
                "recover",
                "my security deposit",
                None,
                "returned",
                "after moving out",
            ),
            Task("raise", "the rent", "increase", "the rent", "lower", "raised", "mid-lease"),
            Task("evict", "a tenant", "remove", "a tenant", None, "evicted", "during winter"),
        ),
        facts=("withhold rent for repairs", "sublet my apartment", "enter the apartment without notice"),
        adjs=(("this neighbourhood", "safe", "secure", "dangerous"), ("the apartment", "big", "large", "small")),
        names=("California", "Texas", "New York", "Florida", "Ontario", "Berlin"),
        name_frame="What are the tenant rights in {name}?",
        comps=(
            ("renting", "buying", "cheaper in the long run"),
            ("a fixed-rate mortgage", "a variable-rate mortgage", "safer"),
        ),
        specific=(("a mold problem in the bathroom", "a problem"), ("a one-bedroom apartment", "an apartment")),
        moves=("Can I move my lease from {a} to {b}?", "How do I transfer utilities from {a} to {b}?"),
        places=("my old apartment", "my new apartment", "my name", "my roommate's name"),
        plurals=(("landlords", "require a credit check"), ("leases", "allow pets")),
        roles=(("the landlord", "sue", "the tenant"), ("the tenant", "evict", "the subtenant")),
        versions=(("Does the {v} rent control law apply to me?", "2019", "2024"),),
        abbrevs=(("homeowners association", "HOA"), ("annual percentage rate", "APR")),
        count_q=("Can my landlord raise the rent by {n} percent?", "Is {n} days notice enough to move out?"),
        date_q=("Is rent due on {d}?", "Can I move in on {d}?"),
        frame_q=("How much should I spend on rent {t}?", "How much does electricity cost {t} for a studio?"),
        unit_q=(("Is a {n} {u} apartment enough for two people?", "square meters", "square feet"),),
        langs=SPOKEN,
    ),
    Domain(
        name="automotive",
        tasks=(
            Task("jump start", "a car battery", "boost", "a dead car battery", None, "jump started", "in cold weather"),
            Task("check", "the tire pressure", "test", "the tyre pressure", None, "checked", "without a gauge"),
            Task("replace", "the brake pads", "change", "the brake pads", None, "replaced", "myself"),
            Task("lease", "a car", "rent long-term", "a car", "buy", "leased", "with bad credit"),
            Task("turn on", "the fog lights", "switch on", "the fog lights", "turn off", "turned on", "automatically"),
        ),
        facts=(
            "drive with the check engine light on",
            "mix synthetic and regular oil",
            "drive on a spare tire on the highway",
        ),
        adjs=(("an electric car", "cheap", "inexpensive", "expensive"), ("this engine", "loud", "noisy", "quiet")),
        names=("Toyota", "Honda", "Tesla", "Ford", "BMW", "Hyundai"),
        name_frame="How reliable is a used {name}?",
        comps=(("a hybrid", "a diesel", "cheaper to run"), ("leasing", "buying", "better for a new driver")),
        specific=(("the rear brake pads", "the brake pads"), ("winter tires", "tires")),
        moves=("How much does shipping a car from {a} to {b} cost?", "Can I drive my car from {a} to {b}?"),
        places=("Germany", "France", "Canada", "the US"),
        plurals=(("electric cars", "need oil changes"), ("used cars", "come with a warranty")),
        roles=(("the seller", "refund", "the buyer"), ("the insurer", "pay", "the other driver")),
        versions=(("Does the {v} model have a timing belt?", "2015", "2018"),),
        abbrevs=(("miles per gallon", "MPG"), ("anti-lock braking system", "ABS")),
        count_q=("Should I change the oil after {n} miles?", "Is a car with {n} owners worth buying?"),
        date_q=("Is the garage open on {d}?", "Can I pick up my car on {d}?"),
        frame_q=(
            "How many miles should I drive {t} to keep the battery charged?",
            "How much does car insurance cost {t}?",
        ),
        unit_q=(
            ("Is a fuel consumption of {n} {u} good?", "liters per 100 km", "miles per gallon"),
            ("Inflate the tires to {n} {u}", "psi", "bar"),
        ),
        langs=SPOKEN,
    ),
    Domain(
        name="fitness",
        tasks=(
            Task("build", "muscle", "gain", "muscle mass", "lose", "built", "without supplements"),
            Task("improve", "my running pace", "get better at", "my running pace", None, "improved", "at altitude"),
            Task("stretch", "my hamstrings", "loosen", "my hamstrings", None, "stretched", "before bed"),
            Task("increase", "my bench press", "raise", "my bench press", "decrease", "increased", "as a beginner"),
        ),
        facts=("work out every day", "run on an empty stomach", "lift weights with a sore back"),
        adjs=(
            ("this workout", "hard", "difficult", "easy"),
            ("swimming", "good for the back", "beneficial for the back", "bad for the back"),
        ),
        names=("CrossFit", "Pilates", "yoga", "HIIT", "Zumba", "spinning"),
        name_frame="Is {name} good for losing weight?",
        comps=(("running", "cycling", "better for the knees"), ("free weights", "machines", "safer for beginners")),
        specific=(("my lower back", "my back"), ("a half marathon", "a race")),
        moves=("How do I progress from {a} to {b}?", "How long does it take to go from {a} to {b}?"),
        places=("walking", "running", "5k", "10k"),
        plurals=(("protein shakes", "cause weight gain"), ("squats", "hurt the knees")),
        roles=(("the trainer", "spot", "the lifter"), ("cardio", "kill", "muscle gains")),
        versions=(("Is the {v} plan good for beginners?", "couch to 5k", "5/3/1"),),
        abbrevs=(("high-intensity interval training", "HIIT"), ("one rep max", "1RM")),
        count_q=("Is it okay to do {n} push-ups a day?", "Is running {n} km a week enough?"),
        date_q=("Is the gym open on {d}?", "Should I rest on {d}?"),
        frame_q=("How much protein do I need {t}?", "How many times should I train legs {t}?"),
        unit_q=(
            ("Is {n} {u} of protein a day too much?", "grams", "ounces"),
            ("Is lifting {n} {u} good for a beginner?", "kg", "pounds"),
        ),
        langs=SPOKEN,
    ),
    Domain(
        name="phones",
        tasks=(
            Task("back up", "my iPhone", "save a copy of", "my iPhone", "restore", "backed up", "without iCloud"),
            Task("block", "a phone number", "stop calls from", "a number", "unblock", "blocked", "on Android"),
            Task("speed up", "my laptop", "make faster", "my laptop", "slow down", "sped up", "without reinstalling"),
            Task(
                "connect",
                "AirPods to a laptop",
                "pair",
                "AirPods with a laptop",
                "disconnect",
                "connected",
                "running Windows",
            ),
            Task(
                "hide", "apps on the home screen", "conceal", "apps on the home screen", "show", "hidden", "on Samsung"
            ),
        ),
        facts=("charge my phone overnight", "use a phone charger for a laptop", "delete the system cache"),
        adjs=(("the battery", "hot", "warm", "cold"), ("the screen", "bright", "luminous", "dim")),
        names=("Samsung Galaxy", "Pixel", "OnePlus", "Xiaomi", "Motorola", "Nokia"),
        name_frame="Does the {name} support wireless charging?",
        comps=(("a MacBook", "a ThinkPad", "better for students"), ("iCloud", "Google Drive", "cheaper")),
        specific=(("my WhatsApp chats", "my chats"), ("a work email account", "an email account")),
        moves=("How do I transfer photos from {a} to {b}?", "How do I move contacts from {a} to {b}?"),
        places=("my iPhone", "my Android phone", "my PC", "an SD card"),
        plurals=(("phones", "support 5G"), ("laptops", "have a fingerprint reader")),
        roles=(("the phone", "charge", "the watch"), ("the laptop", "share internet with", "the tablet")),
        versions=(
            ("Is {v} available for my phone?", "iOS 17", "iOS 16"),
            ("Can I upgrade to {v} for free?", "Windows 11", "Windows 10"),
        ),
        abbrevs=(("virtual private network", "VPN"), ("random access memory", "RAM")),
        count_q=("Is {n} GB of storage enough for a phone?", "Can I connect {n} devices to the hotspot?"),
        date_q=("Is the new iPhone released on {d}?", "Is the repair shop open on {d}?"),
        frame_q=("How much mobile data do I use {t}?", "How many times should I restart my phone {t}?"),
        unit_q=(
            ("Is a {n} {u} screen too small?", "inch", "cm"),
            ("Is a {n} {u} charger safe for my phone?", "W", "V"),
        ),
        langs=SPOKEN,
    ),
)
TEST_DOMAINS = frozenset({"cooking", "housing", "automotive", "fitness", "phones"})
