"""Thin mains of the four services (installed as ``opensqt_services``)."""
