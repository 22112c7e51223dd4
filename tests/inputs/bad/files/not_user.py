class Helper:
    """Not a Locust user class."""
