"""Conformance suite for MEGA clients and brokers."""
