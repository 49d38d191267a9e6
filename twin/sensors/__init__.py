"""Sensors: OGC SensorThings entities, fast observation ingest, rules and alarms.

Plain Python (no web framework): the server's ``/sta/v1.1`` routes and the MQTT
ingester both call into this package with a SQLAlchemy connection.
"""
