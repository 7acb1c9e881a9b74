"""The local stack: the jobrelay application on moto, an HTTP front door and the vendor sandbox."""
