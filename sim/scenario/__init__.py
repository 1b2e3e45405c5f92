"""YAML files into typed values: scenarios, events, sweep files, the sourced history.

Safe loading and all validation of input live here.
"""
