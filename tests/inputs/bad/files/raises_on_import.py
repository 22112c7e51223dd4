raise RuntimeError("this module refuses to be imported")


class Shopper:
    pass
