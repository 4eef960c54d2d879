"""MMLU-style probes: trustgate's own 4-choice questions in MMLU's schema, with 5 dev questions per subject.

Question = {"question", "choices": [4 texts], "answer": "A".."D", "subject"}. Arithmetic and
percentages are generated; capitals and element symbols come from small fact tables written
here; science questions are hand-written. The correct choice's position is drawn from a
seeded generator, so the letters are balanced and a model that always answers "A" scores
about 25.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

import numpy as np

DEV_PER_SUBJECT = 5
LETTERS = "ABCD"

CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasilia"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Peru", "Lima"), ("Spain", "Madrid"),
    ("Italy", "Rome"), ("Germany", "Berlin"), ("India", "New Delhi"), ("China", "Beijing"), ("Russia", "Moscow"),
    ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Greece", "Athens"), ("Turkey", "Ankara"), ("Iran", "Tehran"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Morocco", "Rabat"), ("Nigeria", "Abuja"),
    ("Ghana", "Accra"), ("Colombia", "Bogota"), ("Cuba", "Havana"), ("South Korea", "Seoul"),
    ("Indonesia", "Jakarta"), ("Pakistan", "Islamabad"), ("New Zealand", "Wellington"), ("Denmark", "Copenhagen"),
    ("Switzerland", "Bern"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("Ethiopia", "Addis Ababa"),
    ("Saudi Arabia", "Riyadh"),
)  # fmt: skip
ELEMENTS = (
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"), ("sodium", "Na"),
    ("magnesium", "Mg"), ("aluminium", "Al"), ("silicon", "Si"), ("phosphorus", "P"), ("sulfur", "S"),
    ("chlorine", "Cl"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"), ("zinc", "Zn"),
    ("silver", "Ag"), ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("tin", "Sn"), ("neon", "Ne"),
    ("argon", "Ar"), ("fluorine", "F"), ("iodine", "I"), ("uranium", "U"), ("nickel", "Ni"), ("cobalt", "Co"),
    ("platinum", "Pt"), ("lithium", "Li"), ("boron", "B"), ("manganese", "Mn"), ("chromium", "Cr"), ("tungsten", "W"),
)  # fmt: skip
# (question, correct answer, three wrong answers), written for trustgate.
SCIENCE = (
    (
        "Which organelle carries out most of a cell's aerobic respiration?",
        "Mitochondrion",
        "Ribosome",
        "Golgi apparatus",
        "Lysosome",
    ),
    ("Which gas do plants take in for photosynthesis?", "Carbon dioxide", "Oxygen", "Nitrogen", "Helium"),
    ("What carries oxygen in human red blood cells?", "Haemoglobin", "Insulin", "Keratin", "Collagen"),
    ("Which planet is closest to the Sun?", "Mercury", "Venus", "Mars", "Earth"),
    ("Which planet is the largest in the Solar System?", "Jupiter", "Saturn", "Neptune", "Earth"),
    (
        "What is the approximate speed of light in a vacuum?",
        "300,000 km/s",
        "3,000 km/s",
        "30,000 km/s",
        "3,000,000 km/s",
    ),
    (
        "At sea level, at what temperature does pure water boil?",
        "100 degrees Celsius",
        "90 degrees Celsius",
        "80 degrees Celsius",
        "120 degrees Celsius",
    ),
    ("What is the SI unit of force?", "Newton", "Joule", "Watt", "Pascal"),
    ("What is the SI unit of electrical resistance?", "Ohm", "Volt", "Ampere", "Tesla"),
    ("Which blood vessels carry blood away from the heart?", "Arteries", "Veins", "Capillaries", "Lymph ducts"),
    ("How many chromosomes does a typical human body cell have?", "46", "23", "44", "48"),
    ("Which part of the plant cell performs photosynthesis?", "Chloroplast", "Nucleus", "Vacuole", "Cell wall"),
    ("What is the chemical formula of table salt?", "NaCl", "KCl", "NaOH", "CaCO3"),
    ("What is the pH of pure water at 25 degrees Celsius?", "7", "1", "10", "14"),
    (
        "Which force keeps the planets in orbit around the Sun?",
        "Gravity",
        "Magnetism",
        "Friction",
        "The strong nuclear force",
    ),
    (
        "What kind of energy does a moving car have because of its motion?",
        "Kinetic energy",
        "Potential energy",
        "Nuclear energy",
        "Chemical energy",
    ),
    (
        "Which layer of the atmosphere contains most of the ozone?",
        "Stratosphere",
        "Troposphere",
        "Mesosphere",
        "Thermosphere",
    ),
    ("What is the main gas in Earth's atmosphere?", "Nitrogen", "Oxygen", "Argon", "Carbon dioxide"),
    ("Which organ produces insulin?", "Pancreas", "Liver", "Kidney", "Spleen"),
    ("What is the hardest natural mineral?", "Diamond", "Quartz", "Topaz", "Calcite"),
    ("How long does light from the Sun take to reach Earth, roughly?", "8 minutes", "8 seconds", "8 hours", "8 days"),
    ("Which particle has a negative electric charge?", "Electron", "Proton", "Neutron", "Photon"),
    (
        "What does DNA stand for?",
        "Deoxyribonucleic acid",
        "Dinitrogen acid",
        "Dual nucleic assembly",
        "Deoxyribose amine",
    ),
    ("Which process turns liquid water into water vapour?", "Evaporation", "Condensation", "Sublimation", "Freezing"),
    ("Which simple machine is a ramp?", "Inclined plane", "Lever", "Pulley", "Wheel and axle"),
    ("Which vitamin does the skin make in sunlight?", "Vitamin D", "Vitamin C", "Vitamin A", "Vitamin K"),
    ("Sound travels fastest through which of these?", "Steel", "Air", "Water", "A vacuum"),
    ("What is the centre of an atom called?", "Nucleus", "Shell", "Orbital", "Core cloud"),
    ("Which type of rock forms from cooled magma?", "Igneous", "Sedimentary", "Metamorphic", "Fossil"),
    ("Which of these animals is a mammal?", "Dolphin", "Shark", "Salmon", "Octopus"),
)


def _question(subject: str, text: str, correct: str, wrong: list[str], rng: np.random.Generator) -> dict[str, Any]:
    position = int(rng.integers(4))
    choices = list(wrong[:3])
    choices.insert(position, correct)
    return {"question": text, "choices": choices, "answer": LETTERS[position], "subject": subject}


def _arithmetic(rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
    questions = []
    for k in range(count):
        a, b = int(rng.integers(12, 99)), int(rng.integers(3, 19))
        kind = k % 3
        if kind == 0:
            text, answer = f"What is {a} multiplied by {b}?", a * b
        elif kind == 1:
            text, answer = f"What is {a * b} divided by {b}?", a
        else:
            text, answer = f"What is {b * 5}% of {a * 20}?", a * b
        offsets = rng.choice([-11, -10, -2, -1, 1, 2, 9, 10], size=3, replace=False)
        wrong = [str(answer + int(o)) for o in offsets]
        questions.append(_question("elementary_mathematics", text, str(answer), wrong, rng))
    return questions


def _from_table(subject: str, table: tuple, template: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    questions = []
    for key, value in table:
        others = [v for _, v in table if v != value]
        wrong = [str(x) for x in rng.choice(others, size=3, replace=False)]
        questions.append(_question(subject, template.format(key), value, wrong, rng))
    return questions


@cache
def _subjects() -> dict[str, tuple[dict[str, Any], ...]]:
    rng = np.random.default_rng(zlib.crc32(b"trustgate-mmlu"))
    science = [_question("general_science", q, c, list(w), rng) for q, c, *w in SCIENCE]
    return {
        "elementary_mathematics": tuple(_arithmetic(rng, 65)),
        "high_school_geography": tuple(
            _from_table("high_school_geography", CAPITALS, "What is the capital of {}?", rng)
        ),
        "high_school_chemistry": tuple(
            _from_table("high_school_chemistry", ELEMENTS, "What is the chemical symbol of {}?", rng)
        ),
        "general_science": tuple(science),
    }


def mmlu_dev_questions() -> dict[str, list[dict[str, Any]]]:
    """The first five questions of each subject: the 5-shot demonstrations, never tested."""
    return {subject: list(qs[:DEV_PER_SUBJECT]) for subject, qs in _subjects().items()}


def mmlu_test_questions() -> dict[str, list[dict[str, Any]]]:
    return {subject: list(qs[DEV_PER_SUBJECT:]) for subject, qs in _subjects().items()}
