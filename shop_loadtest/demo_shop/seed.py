"""The demo catalogue and customers, made by Faker from a fixed seed (same seed, same shop)."""

from __future__ import annotations

import secrets

from faker import Faker

from shop_loadtest.demo_shop.db import Database

DEMO_PASSWORD = "secret"  # any email logs in with it; the seeded users just have names
DEMO_USER = ("demo@example.com", "Demo Customer")

CATEGORIES: dict[str, tuple[str, ...]] = {
    "Kitchen": ("Mug", "Kettle", "Frying Pan", "Chef Knife", "Cutting Board", "Teapot"),
    "Garden": ("Watering Can", "Trowel", "Planter", "Hose Reel", "Bird Feeder", "Pruner"),
    "Office": ("Notebook", "Desk Lamp", "Fountain Pen", "Stapler", "Monitor Stand", "Organiser"),
    "Outdoor": ("Tent", "Backpack", "Headlamp", "Water Bottle", "Camp Stove", "Hammock"),
    "Home": ("Cushion", "Throw Blanket", "Candle", "Wall Clock", "Vase", "Doormat"),
    "Toys": ("Puzzle", "Kite", "Building Set", "Plush Bear", "Yo-yo", "Board Game"),
    "Audio": ("Headphones", "Speaker", "Turntable", "Earbuds", "Radio", "Soundbar"),
    "Sports": ("Yoga Mat", "Football", "Jump Rope", "Tennis Racket", "Dumbbell", "Bike Light"),
}
MATERIALS = ("Oak", "Steel", "Ceramic", "Bamboo", "Linen", "Recycled", "Copper", "Wool", "Glass")


def seed_if_empty(db: Database, *, products: int, seed: int) -> str:
    """Fill a new database once; returns the shop's session secret, stored with the data.

    Runs without the storage cap, so a cap smaller than the catalogue still gives a shop
    (one whose every write fails).
    """
    with db.write(capped=False) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'secret_key'").fetchone()
        if row is not None:
            return str(row[0])
        fake = Faker()
        fake.seed_instance(seed)
        rows = []
        for product_id in range(1, products + 1):
            category = fake.random_element(tuple(CATEGORIES))
            noun = fake.random_element(CATEGORIES[category])
            name = f"{fake.color_name()} {fake.random_element(MATERIALS)} {noun}"
            description = fake.paragraph(nb_sentences=3)
            price_cents = fake.random_int(1, 249) * 100 + 99
            rows.append(
                (product_id, name, description, category, price_cents, fake.random_int(0, 500))
            )
        conn.executemany(
            "INSERT INTO products (id, name, description, category, price_cents, stock)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        users = [DEMO_USER] + [(fake.unique.email(), fake.name()) for _ in range(4)]
        conn.executemany("INSERT INTO users (email, name) VALUES (?, ?)", users)
        secret = secrets.token_hex(32)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("secret_key", secret), ("seed", str(seed)), ("products", str(products))],
        )
        return secret
