"""What runs on worker machines: Celery entry points (tasks.py) and the Django-free engine (engine/)."""
