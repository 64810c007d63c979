# lab3-paging's make fragment: the student's file(s), each as MAKEVAR:file (the grader sets MAKEVAR to a student's copy).
LABS += lab3-paging
lab3-paging_PARTS := LAB3_SRC:lab3_paging.c
