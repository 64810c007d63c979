# lab2-protected's make fragment: the student's file(s), each as MAKEVAR:file (the grader sets MAKEVAR to a student's copy).
LABS += lab2-protected
lab2-protected_PARTS := LAB2_SRC:lab2_protected.c
